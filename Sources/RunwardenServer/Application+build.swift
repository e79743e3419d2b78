import Hummingbird
import Logging
import ServiceLifecycle
import RunwardenCore
import RunwardenStore
import RunwardenStorePostgres
import RunwardenStoreSQLite

/// Builds the application `serve` runs; tests build the same thing.
///
/// With `configuration.tracing`, `requestTracing` is the service of the tracer `serve`
/// bootstrapped (`TracingConfiguration.bootstrapRequestTracing`); it and the run spans'
/// exporter run first, so they stop last and send what the last requests and changes made.
public func buildApplication(
    _ configuration: ServerConfiguration, store: (any RunStore)? = nil, logger: Logger = Logger(label: "runwarden"),
    requestTracing: (any Service)? = nil,
    onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    try configuration.validate()
    let hub = ChangeHub()
    var services: [any Service] = []
    var runSpans: RunSpanExporter?
    if let tracing = configuration.tracing {
        let exporter = RunSpanExporter(tracesURL: tracing.tracesURL, serviceName: tracing.serviceName, logger: logger)
        services += [requestTracing, exporter].compactMap { $0 }
        runSpans = exporter
    }
    var postgres: PostgresRunStore?
    let chosenStore: any RunStore
    if let store {
        chosenStore = store
    } else {
        switch try configuration.databaseKind() {
        case .sqlite(let path):
            let store = try await SQLiteRunStore.open(path: path)
            // Before the workers, so it stops after them: shutdown waits for the writes of the
            // requests it drained.
            services.append(store)
            chosenStore = store
        case .postgres(let url):
            let store = try PostgresRunStore(url: url, maxConnections: configuration.databasePoolSize, logger: logger)
            // The connection pool runs first and stops last; other nodes' changes wake this one.
            services += [store, PostgresChangeListener(store: store, hub: hub, logger: logger)]
            postgres = store
            chosenStore = store
        }
    }
    // A PostgreSQL schema is migrated just before the server listens; SQLite's already is.
    let schema = SchemaReady(ready: postgres == nil)
    let service = RunService(
        store: chosenStore, hub: hub, leaseSeconds: configuration.leaseSeconds, logger: logger, schema: schema,
        logCap: LogCap(maxBytes: configuration.logMaxBytes), runSpans: runSpans)
    let router = buildRouter(service: service, configuration: configuration)
    if let interval = configuration.reaperInterval { services.append(Reaper(service: service, interval: interval)) }
    if configuration.retention != nil || configuration.logRetention != nil {
        services.append(Retention(service: service, runs: configuration.retention, logs: configuration.logRetention))
    }
    if configuration.dispatchWebhooks {
        var settings = WebhookDispatcher.Settings(schedule: configuration.webhookRetryMs)
        settings.attemptTimeout = configuration.webhookAttemptTimeout
        settings.egress = configuration.webhookEgress
        services.append(WebhookDispatcher(service: service, settings: settings))
    }
    var app = Application(
        router: router,
        server: try ServerTransport.builder(configuration),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "runwarden"),
        services: services,
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
    if let postgres {
        app.beforeServerStarts {
            try await postgres.migrate()
            schema.markReady()
        }
    }
    return app
}

/// Every route this server declares (HEAD of each GET is added by `buildRouter`): the table
/// the router registers and the API reference (docs/api.md) must cover.
func declaredRoutes(service: RunService, configuration: ServerConfiguration) -> [Route] {
    let maxBody = configuration.maxBodyBytes
    return
        RunRoutes(service: service, maxBody: maxBody, egress: configuration.webhookEgress, maxTasks: configuration.maxTasks).routes
        + EventRoutes(service: service).routes
        + StreamRoutes(service: service, keepAlive: configuration.streamKeepAlive).routes
        + WebhookRoutes(service: service, maxBody: maxBody, egress: configuration.webhookEgress).routes
        + RunnerRoutes(service: service, maxBody: maxBody).routes
        + RunnerRegistryRoutes(service: service).routes
        + RunnerTokenRoutes(service: service, maxBody: maxBody).routes
        + TaskAndLockRoutes(service: service, maxBody: maxBody).routes
        + LogRoutes(service: service, maxBody: maxBody, keepAlive: configuration.streamKeepAlive).routes
        + HealthRoutes(service: service).routes
        + OperatorRoutes().routes
        + MetricsRoutes(service: service).routes
}

/// The router with every route of SPEC §2 this server implements, behind one error middleware.
public func buildRouter(service: RunService, configuration: ServerConfiguration) -> Router<RunwardenRequestContext> {
    let declared = declaredRoutes(service: service, configuration: configuration)
    let routes = declared + declared.filter { $0.method == .get }.map(\.head)
    let authenticator = Authenticator(clientToken: configuration.clientToken, runnerToken: configuration.runnerToken)

    let router = Router(context: RunwardenRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware(metrics: service.metrics))
    // A span per request, named by its route pattern; not even added when nothing is traced.
    if configuration.tracing != nil { router.add(middleware: TracingMiddleware()) }
    router.add(middleware: ErrorMiddleware(routes: RouteMatcher(routes)))
    if configuration.isOpen { router.add(middleware: BrowserGuard(scheme: configuration.tls == nil ? "http" : "https")) }
    for route in routes {
        let handler = route.handler
        let role = route.role
        let perRunnerTokens = route.perRunnerTokens
        router.on(RouterPath(route.path), method: route.method) { request, context -> Response in
            var context = context
            if let role {
                let caller = try await authenticator.authorize(request, as: role, perRunnerTokens: perRunnerTokens, now: service.clock()) {
                    secret in try await service.runnerToken(secret: secret)
                }
                (context.role, context.token, context.runnerScope) = (caller.role, caller.token, caller.runnerScope)
                context.runnerTokenID = caller.runnerTokenID
            }
            return try await handler(request, context)
        }
    }
    return router
}
