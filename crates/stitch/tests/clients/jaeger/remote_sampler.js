// jaeger-client's own remote sampler polling Stitch's Jaeger sampling endpoint
// (GET /sampling?service=). Prints, as one line of JSON, what the sampler built from the
// answer: its kind, the default probability and lower bound, and per operation the
// probability and lower bound of the sampler it uses.
//
//   node remote_sampler.js HOST:PORT SERVICE
const { RemoteSampler } = require('jaeger-client');

const [hostPort, service] = process.argv.slice(2);
const quiet = { info() {}, error(msg) { console.error(msg); } };

const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'no strategy within 10 s' }));
  process.exit(1);
}, 10000);

const remote = new RemoteSampler(service, {
  hostPort,
  refreshInterval: 50,
  logger: quiet,
  onSamplerUpdate(sampler) {
    clearTimeout(deadline);
    const operations = {};
    for (const [name, s] of Object.entries(sampler._samplersByOperation || {})) {
      operations[name] = {
        probability: s._probabilisticSampler.samplingRate,
        lowerBound: s._lowerBoundSampler.maxTracesPerSecond,
      };
    }
    console.log(JSON.stringify({
      ok: true,
      sampler: sampler.name(),
      defaultProbability: sampler._defaultSampler ? sampler._defaultSampler.samplingRate : null,
      defaultLowerBound: sampler._defaultLowerBound,
      operations,
    }));
    remote.close(() => process.exit(0));
  },
});
