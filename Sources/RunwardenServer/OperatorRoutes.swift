import Foundation
import Hummingbird
import HTTPTypes

/// What operators and integrators open without a token: the dashboard page (its API calls
/// carry the token the user enters) and the OpenAPI document. Both are compiled into the
/// binary from `Resources/`, so a single executable serves them.
struct OperatorRoutes {
    var routes: [Route] {
        [
            Route(.get, "/ui", role: nil) { _, _ in Self.page(PackageResources.dashboard_html, type: "text/html; charset=utf-8") },
            Route(.get, "/openapi.json", role: nil) { _, _ in Self.page(PackageResources.openapi_json, type: "application/json") },
        ]
    }

    static func page(_ bytes: [UInt8], type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
