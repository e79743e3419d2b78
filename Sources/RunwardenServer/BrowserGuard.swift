import HTTPTypes
import Hummingbird
import RunwardenCore

/// Keeps web pages out of an open-mode server (SPEC §6). With no tokens, any page the user has
/// open could otherwise `fetch` this server — a "simple" cross-origin POST needs no preflight —
/// and its runners would execute the page's command; with DNS rebinding a page could read runs.
///
/// Refused with `403 forbidden_origin`, before any route runs:
/// - an `Origin` that is not this server's own (`scheme://` + the request's `Host`);
/// - `Sec-Fetch-Site: cross-site` or `same-site`, except a top-level navigation that only
///   reads (a link to the dashboard from another page: the page cannot see the answer);
/// - a `Host` that is not a loopback name or address (a rebound DNS name).
/// curl and other non-browser clients send neither `Origin` nor `Sec-Fetch-Site` and pass.
struct BrowserGuard: RouterMiddleware {
    typealias Context = RunwardenRequestContext
    /// `http` or `https`: the scheme of this server's own origin.
    let scheme: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = refusal(of: request) { throw RunwardenError(.forbiddenOrigin, refusal) }
        return try await next(request, context)
    }

    /// Why the request is refused, or nil when it may go on.
    func refusal(of request: Request) -> String? {
        let host = request.head.authority
        if let host, LoopbackName.hostOfHeader(host).map(LoopbackName.matches) != true {
            return "this server has no tokens and answers only requests addressed to a loopback name, not \(Printable.quoted(host))"
        }
        if let origin = request.headers[.origin] {
            guard let host, origin.lowercased() == "\(scheme)://\(host.lowercased())" else {
                return "this server has no tokens and answers no other web origin than its own (Origin \(Printable.quoted(origin)))"
            }
        }
        if let site = request.headers[.secFetchSite]?.lowercased(), site == "cross-site" || site == "same-site" {
            let isReadingNavigation =
                [.get, .head].contains(request.method) && request.headers[.secFetchMode]?.lowercased() == "navigate"
            if !isReadingNavigation {
                return "this server has no tokens and answers no request another site's page makes (Sec-Fetch-Site: \(site))"
            }
        }
        return nil
    }
}

extension HTTPField.Name {
    static let secFetchSite = Self("Sec-Fetch-Site")!
    static let secFetchMode = Self("Sec-Fetch-Mode")!
}

/// Text from a request, fit to quote in a message: bounded, control characters escaped.
enum Printable {
    static func quoted(_ text: String, limit: Int = 100) -> String {
        var out = "\""
        for scalar in text.unicodeScalars.prefix(limit) {
            if scalar.value < 0x20 || scalar.value == 0x7f || scalar == "\"" || scalar == "\\" {
                out += scalar == "\"" ? "\\\"" : scalar == "\\" ? "\\\\" : "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out + (text.unicodeScalars.count > limit ? "…\"" : "\"")
    }
}
