//! Delta debugging (Zeller and Hildebrandt's `ddmin`) over the positions of a list: the
//! smallest subset, in the list's order, that still fails, found by trying halves, then
//! complements, then finer splits. The empty set is tried first: it is the biggest cut and
//! often the right one (a failure that needs no fault at all).

/// What a test of one subset said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The subset still fails the same way: keep it.
    Fails,
    /// It does not (it passes, fails another way, or is not a valid scenario).
    Passes,
    /// The budget is spent: stop where we are.
    Stop,
}

/// The subset of `0..len` ddmin settles on, and whether the budget cut the search short.
/// `test` is asked about subsets only (never about the whole list, which is known to fail),
/// always with positions in increasing order.
pub(crate) fn ddmin(len: usize, test: &mut dyn FnMut(&[usize]) -> Probe) -> (Vec<usize>, bool) {
    let mut kept: Vec<usize> = (0..len).collect();
    if kept.is_empty() {
        return (kept, false);
    }
    match test(&[]) {
        Probe::Fails => return (Vec::new(), false),
        Probe::Stop => return (kept, true),
        Probe::Passes => {}
    }
    let mut n = 2;
    while kept.len() >= 2 {
        let chunks = split(&kept, n);
        let mut reduced = false;
        for chunk in &chunks {
            match test(chunk) {
                Probe::Fails => {
                    kept = chunk.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
                Probe::Stop => return (kept, true),
                Probe::Passes => {}
            }
        }
        // With two chunks each complement is the other chunk: already tried.
        if !reduced && chunks.len() > 2 {
            for chunk in &chunks {
                let complement: Vec<usize> = kept
                    .iter()
                    .copied()
                    .filter(|i| !chunk.contains(i))
                    .collect();
                match test(&complement) {
                    Probe::Fails => {
                        kept = complement;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                    Probe::Stop => return (kept, true),
                    Probe::Passes => {}
                }
            }
        }
        if !reduced {
            if n >= kept.len() {
                break;
            }
            n = (2 * n).min(kept.len());
        }
    }
    (kept, false)
}

/// `items` in `n` contiguous chunks of sizes differing by at most one.
fn split(items: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, items.len().max(1));
    let (size, extra) = (items.len() / n, items.len() % n);
    let mut chunks = Vec::with_capacity(n);
    let mut at = 0;
    for k in 0..n {
        let len = size + usize::from(k < extra);
        chunks.push(items[at..at + len].to_vec());
        at += len;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when every element of `needed` is in the subset.
    fn needs(needed: &[usize]) -> impl FnMut(&[usize]) -> Probe + '_ {
        move |subset| {
            if needed.iter().all(|i| subset.contains(i)) {
                Probe::Fails
            } else {
                Probe::Passes
            }
        }
    }

    #[test]
    fn finds_the_one_or_two_elements_a_failure_needs() {
        assert_eq!(ddmin(12, &mut needs(&[7])), (vec![7], false));
        assert_eq!(ddmin(12, &mut needs(&[2, 9])), (vec![2, 9], false));
        assert_eq!(ddmin(5, &mut needs(&[])), (vec![], false));
        assert_eq!(ddmin(7, &mut needs(&[0, 3, 6])), (vec![0, 3, 6], false));
    }

    #[test]
    fn stops_with_what_it_has_when_the_budget_runs_out() {
        let mut calls = 0;
        let (kept, cut) = ddmin(8, &mut |subset: &[usize]| {
            calls += 1;
            match calls {
                1 => Probe::Passes,
                2 if subset == [0, 1, 2, 3] => Probe::Fails,
                _ => Probe::Stop,
            }
        });
        assert!(cut);
        assert_eq!(kept, vec![0, 1, 2, 3]);
    }

    #[test]
    fn splits_into_near_equal_contiguous_chunks() {
        assert_eq!(split(&[0, 1, 2, 3, 4], 2), vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(split(&[5, 6], 4), vec![vec![5], vec![6]]);
    }
}
