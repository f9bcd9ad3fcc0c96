//! Where the time of a span goes: the dominant leaf, uninstrumented time and gaps, sequential calls
//! that could run in parallel.

use super::*;

impl<'c, 'x, 't, 'a> Detector<'c, 'x, 't, 'a> {
    // ----- 1. dominant leaf -------------------------------------------------------------

    pub(super) fn dominant_leaf(&mut self) {
        let tl = self.tl();
        let path = self.ctx.path;
        let best = (0..tl.len())
            .filter(|&i| path.own[i] > 0 && tl.sync_kids(i).next().is_none())
            .max_by_key(|&i| {
                (
                    path.own[i],
                    std::cmp::Reverse(tl.lo[i]),
                    std::cmp::Reverse(i),
                )
            });
        let Some(leaf) = best else { return };
        let cost = path.own[leaf];
        let min = self
            .opts()
            .min_cost_nanos
            .max((self.opts().dominant_leaf_min_share * self.duration as f64).ceil() as u64);
        if cost < min || self.origin_of_error.contains(&leaf) {
            return;
        }
        let span = tl.span(leaf);
        let service = tl.service(leaf);
        let what = match self.call(leaf) {
            Some(Call { db: Some(db), .. }) => {
                format!(
                    "{service} spent {} on the database query {:?} ({db})",
                    format_duration(cost),
                    span.name
                )
            }
            Some(c)
                if tl.kids(leaf).is_empty()
                    && matches!(span.kind, SpanKind::Client | SpanKind::Producer) =>
            {
                format!(
                    "{service} waited {} on {:?} to {}, a call that leaves the trace (an external or uninstrumented service)",
                    format_duration(cost),
                    span.name,
                    c.target
                )
            }
            _ => match tl.parent(leaf) {
                Some(p) => format!(
                    "{service} spent {} in {:?} (under {:?})",
                    format_duration(cost),
                    span.name,
                    tl.span(p).name
                ),
                None => format!(
                    "{service} spent {} in {:?}",
                    format_duration(cost),
                    span.name
                ),
            },
        };
        let mut f = self.finding(FindingKind::DominantLeaf, leaf, vec![leaf]);
        f.title = format!(
            "{what} — {} of the request: the widest bar on the critical path",
            self.pct(cost)
        );
        f.cost_nanos = cost;
        f.target = self.call(leaf).map(|c| c.target.to_string());
        self.push(leaf, f);
    }

    // ----- 2 and 3. uninstrumented time, client→server gaps ----------------------------

    pub(super) fn uninstrumented_and_gaps(&mut self, p: usize) {
        let tl = self.tl();
        let path = self.ctx.path;
        let threshold = self.gap_threshold();
        if path.own[p] < threshold || tl.sync_kids(p).next().is_none() {
            return;
        }
        let stretches = intersect(path.sections(p), &tl.self_intervals(p));
        let remote = self
            .call(p)
            .filter(|c| tl.span(p).kind == SpanKind::Client && !c.remote_kids.is_empty());
        if let Some(call) = remote {
            let cost: u64 = stretches.iter().map(|(a, b)| b - a).sum();
            if cost < threshold {
                return;
            }
            let first = call.remote_kids[0];
            let before = tl.lo[first] - tl.lo[p];
            let last_end = call
                .remote_kids
                .iter()
                .map(|&k| tl.hi[k])
                .max()
                .unwrap_or(tl.hi[p]);
            let after = tl.hi[p] - last_end;
            let callee = tl.service(first);
            let mut spans = vec![p];
            spans.extend(&call.remote_kids);
            let mut f = self.finding(FindingKind::ClientServerGap, p, spans);
            f.title = format!(
                "{} → {callee} {:?}: {} of the call's {} was spent outside {callee} ({} before it started, {} after it finished) — network, queueing, connection setup or serialization",
                tl.service(p),
                tl.span(p).name,
                format_duration(cost),
                format_duration(tl.width(p)),
                format_duration(before),
                format_duration(after),
            );
            f.cost_nanos = cost;
            f.target = Some(callee.to_owned());
            self.push(p, f);
            return;
        }
        for (a, b) in stretches {
            if b - a < threshold {
                continue;
            }
            let between = self.events_around(p, a, b);
            let mut f = self.finding(FindingKind::UninstrumentedTime, p, vec![p]);
            f.title = format!(
                "{} spent {} in {:?} with no child span running{between} — uninstrumented work such as a synchronous log write, a lock or CPU-heavy code",
                tl.service(p),
                format_duration(b - a),
                tl.span(p).name,
            );
            f.cost_nanos = b - a;
            self.out.push((f, a));
        }
    }

    /// ` (between "X" and "Y")`, `(after "X")`, `(before "Y")` from the span's events at the
    /// ends of `[a, b)`, or nothing.
    pub(super) fn events_around(&self, p: usize, a: u64, b: u64) -> String {
        let span = self.tl().span(p);
        let shift = self.ctx.shift.get(p).copied().unwrap_or(0);
        let tol = ((b - a) / 20).max(1_000_000);
        let near = |t: u64, at: u64| t + tol >= at && t <= at + tol;
        let mut start = None;
        let mut end = None;
        for e in &span.events {
            let t = shift_time(e.time_unix_nano, shift);
            if near(t, a) {
                start = Some(e.name.as_str());
            }
            if end.is_none() && near(t, b) {
                end = Some(e.name.as_str());
            }
        }
        match (start, end) {
            (Some(x), Some(y)) if x != y => format!(" (between {x:?} and {y:?})"),
            (Some(x), _) => format!(" (after {x:?})"),
            (None, Some(y)) => format!(" (before {y:?})"),
            (None, None) => String::new(),
        }
    }

    // ----- 4. sequential calls -----------------------------------------------------------

    pub(super) fn sequential(&mut self, p: usize) {
        if self.kids_path_time(p) < self.share_threshold() {
            return;
        }
        let tl = self.tl();
        let mut run: Vec<usize> = Vec::new();
        let mut endpoints: FastSet<(&str, &str)> = FastSet::default();
        let kids: Vec<usize> = tl.sync_kids(p).collect();
        for c in kids {
            if !self.parallel_candidate(c) {
                self.flush_sequential(p, &run);
                run.clear();
                endpoints.clear();
                continue;
            }
            let endpoint = self.call(c).map_or(("", ""), Call::endpoint);
            let joins = run.last().is_some_and(|&last| {
                let idle_ok = tl.lo[c] >= tl.hi[last] && {
                    let shorter = tl.width(last).min(tl.width(c));
                    let allowed = self
                        .opts()
                        .sequential_max_idle_nanos
                        .max((self.opts().sequential_max_idle_share * shorter as f64) as u64);
                    tl.lo[c] - tl.hi[last] <= allowed
                };
                idle_ok && !endpoints.contains(&endpoint)
            });
            if !joins {
                self.flush_sequential(p, &run);
                run.clear();
                endpoints.clear();
            }
            run.push(c);
            endpoints.insert(endpoint);
        }
        self.flush_sequential(p, &run);
    }

    pub(super) fn parallel_candidate(&self, c: usize) -> bool {
        let tl = self.tl();
        let Some(call) = self.call(c) else {
            return false;
        };
        call.db.is_none()
            && !self.failed[c]
            && tl.width(c) >= self.opts().sequential_min_call_nanos
            && !call.writes()
            && !call.gates()
            && !self.is_tail_work(c)
    }

    pub(super) fn flush_sequential(&mut self, p: usize, run: &[usize]) {
        if run.len() < 2 {
            return;
        }
        let tl = self.tl();
        let total: u64 = run.iter().map(|&c| tl.width(c)).sum();
        let longest = run.iter().map(|&c| tl.width(c)).max().unwrap_or(0);
        let on_path: u64 = run.iter().map(|&c| self.ctx.path.subtree[c]).sum();
        let cost = (total - longest).min(on_path);
        if cost < self.share_threshold() {
            return;
        }
        let calls: Vec<String> = run
            .iter()
            .map(|&c| format!("{} ({})", self.call_label(c), format_duration(tl.width(c))))
            .collect();
        let mut f = self.finding(FindingKind::SequentialCalls, p, run.to_vec());
        f.title = format!(
            "{} called {} one after the other in {:?}; nothing in the trace shows that one needs another's result — in parallel they would save ~{}",
            tl.service(p),
            join_words(&calls, "then"),
            tl.span(p).name,
            format_duration(cost),
        );
        f.cost_nanos = cost;
        f.saving_nanos = Some(cost);
        f.target = Some(
            run.iter()
                .filter_map(|&c| self.call(c).map(|k| k.target.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        f.count = Some(run.len() as u32);
        self.push(run[0], f);
    }
}
