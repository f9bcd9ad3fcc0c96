// Reads a JSON array of TraceQL queries on stdin and prints a JSON array saying, for each,
// whether Grafana's TraceQL grammar (the one its query editor uses) parses it without error.
import { parser } from "@grafana/lezer-traceql";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const verdicts = JSON.parse(input).map((query) => {
    let clean = true;
    parser.parse(query).iterate({
      enter: (node) => {
        if (node.type.isError) clean = false;
      },
    });
    return clean;
  });
  process.stdout.write(JSON.stringify(verdicts));
});
