import Crypto
import Foundation
import Hummingbird
import HTTPTypes
import RunwardenCore

/// What operators and integrators open without a token: the dashboard page (its API calls
/// carry the token the user enters) and the OpenAPI document. Both are compiled into the
/// binary from `Resources/`, so a single executable serves them.
struct OperatorRoutes {
    var routes: [Route] {
        [
            Route(.get, "/ui", role: nil) { _, _ in
                Self.page(DashboardPage.html, type: "text/html; charset=utf-8", extraHeaders: DashboardPolicy.headers)
            },
            Route(.get, "/openapi.json", role: nil) { _, _ in Self.page(PackageResources.openapi_json, type: "application/json") },
        ]
    }

    static func page(_ bytes: [UInt8], type: String, extraHeaders: HTTPFields = [:]) -> Response {
        var headers = extraHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        headers[.xContentTypeOptions] = "nosniff"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The dashboard's security headers (SPEC §6). Its one inline `<script>` and `<style>` are
/// allowed by their SHA-256 (computed from the page itself, so an edit of the page cannot
/// leave a stale hash); nothing else may run, load, frame the page or be framed by it.
enum DashboardPolicy {
    static let headers: HTTPFields = [
        .contentSecurityPolicy: contentSecurityPolicy(DashboardPage.html),
        .xFrameOptions: "DENY",
        .referrerPolicy: "no-referrer",
    ]

    static func contentSecurityPolicy(_ page: [UInt8]) -> String {
        let html = String(decoding: page, as: UTF8.self)
        let scripts = inlineBlocks(of: "script", in: html).map(hashSource)
        let styles = inlineBlocks(of: "style", in: html).map(hashSource)
        return [
            "default-src 'none'",
            "script-src " + scripts.joined(separator: " "),
            "style-src " + styles.joined(separator: " "),
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ].joined(separator: "; ")
    }

    /// The text between each `<tag>` and `</tag>` (the page's own blocks carry no attributes).
    static func inlineBlocks(of tag: String, in html: String) -> [Substring] {
        var blocks: [Substring] = []
        var rest = html[...]
        while let open = rest.range(of: "<\(tag)>"), let close = rest.range(of: "</\(tag)>", range: open.upperBound..<rest.endIndex) {
            blocks.append(rest[open.upperBound..<close.lowerBound])
            rest = rest[close.upperBound...]
        }
        return blocks
    }

    static func hashSource(_ block: Substring) -> String {
        "'sha256-" + Data(SHA256.hash(data: Data(block.utf8))).base64EncodedString() + "'"
    }
}

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}
