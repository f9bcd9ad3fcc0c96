//! Calls made again: retries of a failed call, and the same call repeated (N+1).

use super::*;

impl<'c, 'x, 't, 'a> Detector<'c, 'x, 't, 'a> {
    // ----- 5 and 6. repeated calls, retries ---------------------------------------------

    pub(super) fn retries_and_repeats(&mut self, p: usize) {
        let tl = self.tl();
        // Retries need a failed call, repeated calls several calls costing enough.
        let repeats_possible = self.on_path(p) && self.kids_path_time(p) >= self.share_threshold();
        if !repeats_possible && !tl.sync_kids(p).any(|c| self.failed[c]) {
            return;
        }
        let calls = tl.sync_kids(p).filter(|&c| self.call(c).is_some());
        let (mut count, mut any_failed) = (0, false);
        for c in calls {
            count += 1;
            any_failed |= self.failed[c];
        }
        if count < 2 || (!any_failed && count < self.opts().repeated_min_calls) {
            return;
        }
        // Endpoint groups for retries, in lo order.
        let mut by_endpoint: FastMap<(&str, &str), Vec<usize>> = FastMap::default();
        let mut order: Vec<(&str, &str)> = Vec::new();
        for c in tl.sync_kids(p).filter(|_| any_failed) {
            if let Some(call) = self.call(c) {
                let key = call.endpoint();
                let group = by_endpoint.entry(key).or_default();
                if group.is_empty() {
                    order.push(key);
                }
                group.push(c);
            }
        }
        let mut claimed: Vec<usize> = Vec::new();
        for key in &order {
            let group = &by_endpoint[key];
            let mut run: Vec<usize> = Vec::new();
            for &c in group {
                let joins = run
                    .last()
                    .is_some_and(|&last| self.failed[last] && tl.lo[c] >= tl.hi[last]);
                if !joins {
                    claimed.extend(self.flush_retries(p, &run));
                    run.clear();
                }
                run.push(c);
            }
            claimed.extend(self.flush_retries(p, &run));
        }
        for &c in &claimed {
            self.retried[c] = true;
        }
        if !repeats_possible {
            return;
        }

        // Repeated calls: database queries grouped by database, other calls by endpoint.
        let mut by_target: FastMap<(&str, &str), Vec<usize>> = FastMap::default();
        let mut order: Vec<(&str, &str)> = Vec::new();
        for c in tl.sync_kids(p) {
            if self.retried[c] {
                continue;
            }
            if let Some(call) = self.call(c) {
                let key = match &call.db {
                    Some(_) => (&*call.target, ""),
                    None => call.endpoint(),
                };
                let group = by_target.entry(key).or_default();
                if group.is_empty() {
                    order.push(key);
                }
                group.push(c);
            }
        }
        for key in order {
            let group = &by_target[&key];
            if group.len() >= self.opts().repeated_min_calls.max(2) {
                self.flush_repeated(p, group);
            }
        }
    }

    /// Reports a retry run (attempts of one endpoint, each but the last failed). Returns the
    /// attempts it claims.
    pub(super) fn flush_retries(&mut self, p: usize, run: &[usize]) -> Vec<usize> {
        if run.len() < 2 {
            return Vec::new();
        }
        let tl = self.tl();
        let path = self.ctx.path;
        let last = *run.last().expect("non-empty");
        let all_failed = self.failed[last];
        let failed: Vec<usize> = if all_failed {
            run.to_vec()
        } else {
            run[..run.len() - 1].to_vec()
        };
        let window = (
            tl.lo[run[0]],
            if all_failed { tl.hi[last] } else { tl.lo[last] },
        );
        let waiting = time_within(path.sections(p), window);
        let cost: u64 = failed.iter().map(|&c| path.subtree[c]).sum::<u64>() + waiting;
        let storm = run.len() >= self.opts().retry_storm_min_attempts;
        if !storm && cost < self.share_threshold() {
            // Too cheap to report, but the attempts were still retried.
            return run.to_vec();
        }
        let timeouts = failed.iter().filter(|&&c| is_timeout(tl.span(c))).count();
        let reason = if timeouts == failed.len() {
            let longest = failed.iter().map(|&c| tl.width(c)).max().unwrap_or(0);
            format!("timed out (after up to {})", format_duration(longest))
        } else {
            failure_reason(tl.span(failed[0]))
        };
        let outcome = if all_failed {
            "and every attempt failed"
        } else {
            "before the last one succeeded"
        };
        let mut f = self.finding(FindingKind::Retries, p, run.to_vec());
        f.title = format!(
            "{}{} called {} {} times in {:?}: {} attempts {reason} {outcome} — the retries cost {} on the critical path",
            if storm { "Retry storm: " } else { "" },
            tl.service(p),
            self.call_label(run[0]),
            run.len(),
            tl.span(p).name,
            failed.len(),
            format_duration(cost),
        );
        f.cost_nanos = cost;
        f.target = self.call(run[0]).map(|c| c.target.to_string());
        f.count = Some(run.len() as u32);
        for &c in run {
            self.retry_finding[c] = Some(self.out.len());
        }
        self.push(run[0], f);
        run.to_vec()
    }

    pub(super) fn flush_repeated(&mut self, p: usize, group: &[usize]) {
        let tl = self.tl();
        let path = self.ctx.path;
        let cost: u64 = group.iter().map(|&c| path.subtree[c]).sum();
        let shortest = group.iter().map(|&c| tl.width(c)).min().unwrap_or(0);
        let saving = cost.saturating_sub(shortest);
        if cost < self.share_threshold() || saving == 0 {
            return;
        }
        let n = group.len();
        let total: u64 = group.iter().map(|&c| tl.width(c)).sum();
        let first = self.call(group[0]).expect("calls only");
        let service = tl.service(p);
        let title = match &first.db {
            Some(db) => {
                let shape = first.shape();
                let same = group.iter().all(|&c| {
                    self.call(c)
                        .is_some_and(|k| k.db.is_some() && k.shape() == shape)
                });
                if same {
                    format!(
                        "{service} ran the same query {n} times on {db} in {:?} ({:?}, {} in all) — an N+1 pattern; one batched query would save ~{}",
                        tl.span(p).name,
                        ellipsize_plain(shape, 80),
                        format_duration(total),
                        format_duration(saving),
                    )
                } else {
                    let names: Vec<String> = group
                        .iter()
                        .take(4)
                        .map(|&c| format!("{:?}", tl.span(c).name))
                        .collect();
                    let more = if n > 4 { ", ..." } else { "" };
                    format!(
                        "{service} made {n} separate round trips to {db} in {:?} ({}{more}; {} in all) — one transaction or batch would save ~{}",
                        tl.span(p).name,
                        names.join(", "),
                        format_duration(total),
                        format_duration(saving),
                    )
                }
            }
            None => format!(
                "{service} called {} {n} times in {:?} ({} in all) — an N+1 pattern; one batched call would save ~{}",
                self.call_label(group[0]),
                tl.span(p).name,
                format_duration(total),
                format_duration(saving),
            ),
        };
        let mut f = self.finding(FindingKind::RepeatedCalls, p, group.to_vec());
        f.title = title;
        f.cost_nanos = cost;
        f.saving_nanos = Some(saving);
        f.target = Some(first.target.to_string());
        f.count = Some(n as u32);
        self.push(group[0], f);
    }
}
