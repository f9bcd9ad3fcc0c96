//! Where an error started, and work left on the critical path after the answer (synchronous tails).

use super::*;

impl<'c, 'x, 't, 'a> Detector<'c, 'x, 't, 'a> {
    // ----- 7. error origin --------------------------------------------------------------

    pub(super) fn error_origins(&mut self) {
        let tl = self.tl();
        let path = self.ctx.path;
        // Origins grouped by (parent, endpoint), in pre-order.
        type Key<'k> = (Option<usize>, &'k str, &'k str);
        let mut groups: Vec<(Key<'_>, Vec<usize>)> = Vec::new();
        let mut index: FastMap<Key<'_>, usize> = FastMap::default();
        // Per reported retries finding: (attempt, origin) of the errors that started in its
        // attempts, the origin being the attempt itself or a span under it (an instrumented
        // callee that failed).
        let mut folded: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        for &i in &tl.order {
            if !self.failed[i] || tl.kids(i).iter().any(|&k| self.failed[k]) {
                continue;
            }
            let parent = tl.parent(i);
            let parent_failed = parent.is_some_and(|p| self.failed[p]);
            if self.retried[i] && !parent_failed {
                continue;
            }
            // Errors that started in (or under) attempts a retries finding reports already:
            // that finding says where the error went instead of a second finding costing the
            // same time again.
            let attempt = std::iter::successors(Some(i), |&a| tl.parent(a))
                .take_while(|&a| self.failed[a])
                .find_map(|a| self.retry_finding[a].map(|f| (f, a)));
            if let Some((f, a)) = attempt {
                match folded.iter_mut().find(|(g, _)| *g == f) {
                    Some((_, members)) => members.push((a, i)),
                    None => folded.push((f, vec![(a, i)])),
                }
                continue;
            }
            let key = match self.call(i) {
                Some(c) => (parent, &*c.target, c.op()),
                None => (parent, tl.service(i), tl.span(i).name.as_str()),
            };
            let slot = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(i);
        }
        // Only the most expensive groups can make the final cut; titles (which walk up the
        // chain of carriers) are built for those alone.
        let cost_of = |members: &[usize]| members.iter().map(|&c| path.subtree[c]).sum::<u64>();
        groups.sort_by_cached_key(|(_, members)| {
            (
                std::cmp::Reverse(cost_of(members)),
                tl.lo[members[0]],
                tl.span(members[0]).span_id,
            )
        });
        groups.truncate(self.opts().max_findings);
        for ((parent, _, _), members) in groups {
            let origin = members[0];
            let span = tl.span(origin);
            let service = tl.service(origin);
            let cost = cost_of(&members);
            let (carriers, carried) = self.carriers(parent, service);
            let reason = failure_reason(span);
            let what = if members.len() > 1 {
                format!(
                    "{} calls to {} from {}",
                    members.len(),
                    self.call_label(origin),
                    tl.service(parent.unwrap_or(origin))
                )
            } else {
                format!("{service} {:?}", span.name)
            };
            let title = match (carried, parent) {
                (Some(carried), _) => {
                    format!("{what} failed ({reason}): the error started here{carried}")
                }
                (None, Some(p)) => format!(
                    "{what} failed ({reason}); its caller {} {:?} carried on without an error",
                    tl.service(p),
                    tl.span(p).name
                ),
                (None, None) => format!(
                    "{what} failed ({reason}) with no failing child: the error started in its own code"
                ),
            };
            let mut spans = members.clone();
            spans.extend(&carriers);
            let mut f = self.finding(FindingKind::ErrorOrigin, origin, spans);
            f.title = title;
            f.cost_nanos = cost;
            if members.len() > 1 {
                f.count = Some(members.len() as u32);
            }
            self.origin_of_error.extend(&members);
            self.push(origin, f);
        }
        for (f, members) in folded {
            let (attempt, origin) = members[0];
            let (carriers, carried) = self.carriers(tl.parent(attempt), tl.service(attempt));
            let started = if origin == attempt {
                "these attempts".to_owned()
            } else {
                format!(
                    "{} {:?}, under these attempts",
                    tl.service(origin),
                    tl.span(origin).name
                )
            };
            let finding = &mut self.out[f].0;
            if let Some(carried) = carried {
                finding.title =
                    format!("{}; the error started in {started}{carried}", finding.title);
            }
            finding
                .spans
                .extend(carriers.iter().map(|&c| tl.span(c).span_id));
            self.origin_of_error
                .extend(members.iter().map(|&(_, origin)| origin));
        }
    }

    /// The failed ancestors above `parent` (itself included) that only carried an error
    /// started below them, nearest first, and a clause saying where it surfaced (`None` when
    /// `parent` did not fail). `service` is the origin's.
    pub(super) fn carriers(
        &self,
        parent: Option<usize>,
        service: &str,
    ) -> (Vec<usize>, Option<String>) {
        let tl = self.tl();
        let mut carriers = Vec::new();
        let mut up = parent;
        while let Some(a) = up {
            if !self.failed[a] {
                break;
            }
            carriers.push(a);
            up = tl.parent(a);
        }
        let Some(&top) = carriers.last() else {
            return (carriers, None);
        };
        let mut services: Vec<&str> = Vec::new();
        for &c in &carriers {
            let s = tl.service(c);
            if s != service && !services.contains(&s) {
                services.push(s);
            }
        }
        let clause = if services.is_empty() {
            format!(
                "; {} {:?} only passed it on",
                tl.service(top),
                tl.span(top).name
            )
        } else {
            format!(
                " and surfaced {} up, in {} {:?}; {} only passed it on",
                plural(services.len(), "service", "services"),
                tl.service(top),
                tl.span(top).name,
                join_words(
                    &services.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    "and"
                ),
            )
        };
        (carriers, Some(clause))
    }

    // ----- 8. synchronous tail work -----------------------------------------------------

    pub(super) fn is_tail_work(&self, c: usize) -> bool {
        let tl = self.tl();
        let Some(call) = self.call(c) else {
            return false;
        };
        if call.db.is_some() {
            return false;
        }
        let span = tl.span(c);
        let keywords = &self.opts().tail_keywords;
        [
            Some(&*call.target),
            Some(span.name.as_str()),
            call.destination,
        ]
        .into_iter()
        .flatten()
        .any(|text| has_word(text, keywords))
    }

    pub(super) fn tail(&mut self, p: usize) {
        if self.kids_path_time(p) < self.share_threshold() {
            return;
        }
        let tl = self.tl();
        let keywords = &self.opts().tail_keywords;
        // A notification service sending mail is doing its job, not tail work.
        if has_word(tl.service(p), keywords) {
            return;
        }
        let kids: Vec<usize> = tl.sync_kids(p).collect();
        let mut tail = Vec::new();
        for &c in kids.iter().rev() {
            if !self.is_tail_work(c) {
                break;
            }
            tail.push(c);
        }
        if tail.is_empty() {
            return;
        }
        let end = tail.iter().map(|&c| tl.hi[c]).max().unwrap_or(tl.hi[p]);
        let allowed =
            ((self.opts().tail_max_trailing_share * tl.width(p) as f64) as u64).max(1_000_000);
        if tl.hi[p] - end > allowed {
            return;
        }
        tail.reverse();
        for c in tail {
            let cost = self.ctx.path.subtree[c];
            if cost < self.share_threshold() {
                continue;
            }
            let mut f = self.finding(FindingKind::SynchronousTail, p, vec![c]);
            f.title = format!(
                "{} waits {} for {} at the end of {:?} although its response does not seem to need it — sending it asynchronously (a queue, fire-and-forget) would save ~{}",
                tl.service(p),
                format_duration(cost),
                self.call_label(c),
                tl.span(p).name,
                format_duration(cost),
            );
            f.cost_nanos = cost;
            f.saving_nanos = Some(cost);
            f.target = self.call(c).map(|k| k.target.to_string());
            self.push(c, f);
        }
    }
}
