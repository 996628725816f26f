//! The POP an HTTP client is redirected to, given the steering ranking:
//! [`choose_pop`], the HTTP side of the usable-POP pick (DNS has its own in
//! `dns::zone`, to be unified).
//!
//! Pure; used by `redirect`.

use crate::steer;

/// The POP to redirect to: the first of `ranking` that is usable and has a
/// URL; if no such POP, the first with a URL (all down counts as all up);
/// `None` if no POP in the ranking has a URL.
pub fn choose_pop(
    ranking: &[steer::PopIdx],
    usable: impl Fn(usize) -> bool,
    has_url: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut with_url = ranking.iter().map(|&i| i as usize).filter(|&i| has_url(i));
    let first = with_url.clone().next();
    with_url.find(|&i| usable(i)).or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_pop_first_usable_with_url_else_first_with_url() {
        let url = |i: usize| i != 3;
        // First usable with a URL.
        assert_eq!(choose_pop(&[0, 1, 2], |i| i != 0, url), Some(1));
        assert_eq!(choose_pop(&[2, 1, 0], |_| true, url), Some(2));
        // A usable POP without a URL is skipped.
        assert_eq!(choose_pop(&[3, 1, 0], |_| true, url), Some(1));
        // None usable: the first with a URL (all down = all up).
        assert_eq!(choose_pop(&[3, 2, 0], |_| false, url), Some(2));
        // No URL at all.
        assert_eq!(choose_pop(&[3], |_| true, url), None);
        assert_eq!(choose_pop(&[], |_| true, url), None);
    }
}
