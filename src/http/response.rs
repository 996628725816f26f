//! HTTP responses: the statuses we send, a [`Response`] before
//! serialisation, its bytes on the wire (always `Connection: close`), and the
//! `Date` field's IMF-fixdate.
//!
//! Pure; built by `redirect`, written by `server`.

use std::time::{SystemTime, UNIX_EPOCH};

/// The response statuses this server sends.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Status {
    Ok,
    Found,
    BadRequest,
    MethodNotAllowed,
    Timeout,
    UriTooLong,
    HeadTooLarge,
    Unavailable,
    VersionNotSupported,
    NotFound,
}

impl Status {
    /// Every status, for counters by code.
    pub const ALL: [Status; 10] = [
        Status::Ok,
        Status::Found,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::Timeout,
        Status::UriTooLong,
        Status::HeadTooLarge,
        Status::Unavailable,
        Status::VersionNotSupported,
    ];

    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Found => 302,
            Status::NotFound => 404,
            Status::BadRequest => 400,
            Status::MethodNotAllowed => 405,
            Status::Timeout => 408,
            Status::UriTooLong => 414,
            Status::HeadTooLarge => 431,
            Status::Unavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Found => "Found",
            Status::NotFound => "Not Found",
            Status::BadRequest => "Bad Request",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::Timeout => "Request Timeout",
            Status::UriTooLong => "URI Too Long",
            Status::HeadTooLarge => "Request Header Fields Too Large",
            Status::Unavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// The date as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        day,
        MON[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// What to answer, before serialisation.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    /// Extra header fields.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// HEAD: send the header block only (Content-Length still that of `body`).
    pub head_only: bool,
    /// The `Content-Type` field's value.
    pub content_type: &'static str,
}

/// The content type of every body but the metrics exposition.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

impl Response {
    /// An error response with a one-line text body.
    pub fn error(status: Status) -> Response {
        let mut headers = Vec::new();
        if status == Status::MethodNotAllowed {
            headers.push(("Allow", "GET, HEAD".to_string()));
        }
        Response {
            status,
            headers,
            body: format!("{} {}\n", status.code(), status.reason()),
            head_only: false,
            content_type: TEXT_PLAIN,
        }
    }

    /// A response with this status and text body.
    pub fn text(status: Status, body: String) -> Response {
        Response {
            body,
            ..Response::error(status)
        }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self, date: &str) -> Vec<u8> {
        let mut s = format!(
            "HTTP/1.1 {} {}\r\nDate: {date}\r\n",
            self.status.code(),
            self.status.reason()
        );
        for (n, v) in &self.headers {
            s.push_str(n);
            s.push_str(": ");
            s.push_str(v);
            s.push_str("\r\n");
        }
        s.push_str("Cache-Control: no-store\r\nContent-Type: ");
        s.push_str(self.content_type);
        s.push_str("\r\n");
        s.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        if !self.head_only {
            s.push_str(&self.body);
        }
        s.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn http_date_is_imf_fixdate() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(http_date(t(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(t(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(t(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(t(4_102_444_799)), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn responses_on_the_wire() {
        let r = Response::error(Status::MethodNotAllowed);
        let s = String::from_utf8(r.to_bytes("D")).unwrap();
        assert!(s.starts_with("HTTP/1.1 405 Method Not Allowed\r\nDate: D\r\n"));
        assert!(s.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(s.contains("\r\nConnection: close\r\n"));
        assert!(s.ends_with("\r\n\r\n405 Method Not Allowed\n"));
        let mut r = Response::error(Status::BadRequest);
        r.head_only = true;
        let s = String::from_utf8(r.to_bytes("D")).unwrap();
        assert!(
            s.ends_with("Content-Length: 16\r\nConnection: close\r\n\r\n"),
            "{s}"
        );
    }
}
