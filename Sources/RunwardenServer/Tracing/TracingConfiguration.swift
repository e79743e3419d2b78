import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Where a server sends its traces (SPEC §11: `--otel-endpoint`, `--otel-service-name`). Nil in
/// `ServerConfiguration.tracing` — the default — traces nothing: no tracer is bootstrapped, no
/// middleware added, no trace stored with a run, no span built.
public struct TracingConfiguration: Sendable, Equatable {
    /// The collector's OTLP/HTTP base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` means it: traces go
    /// to its `/v1/traces`.
    public var endpoint: String
    public var serviceName: String

    public static let defaultServiceName = "runwarden"

    public init(endpoint: String, serviceName: String = defaultServiceName) {
        self.endpoint = endpoint
        self.serviceName = serviceName
    }

    /// The URL spans are posted to.
    public var tracesURL: String {
        (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
    }

    /// An `http` or `https` URL with a host: anything else would fail on the first export.
    var isValid: Bool {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            return false
        }
        return scheme == "http" || scheme == "https"
    }

    /// Bootstraps the process's tracer with swift-otel's OTLP/HTTP exporter (protobuf: its JSON
    /// writes ids in base64 where OTLP/JSON wants hex, which collectors refuse) and returns the
    /// service that runs its exporter and batch processor; graceful shutdown flushes them. Request spans come from Hummingbird's
    /// `TracingMiddleware` through this tracer. Once per process: `serve` calls it.
    public func bootstrapRequestTracing(logger: Logger) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.diagnosticLogger = .custom(logger)
        configuration.traces.otlpExporter.endpoint = tracesURL
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }
}
