import Hummingbird
import Logging
import ServiceLifecycle
import RunwardenCore
import RunwardenStore
import RunwardenStoreSQLite

/// Builds the application `serve` runs; tests build the same thing.
public func buildApplication(
    _ configuration: ServerConfiguration, store: (any RunStore)? = nil, logger: Logger = Logger(label: "runwarden"),
    onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    try configuration.validate()
    guard case .sqlite(let path) = try configuration.databaseKind() else {
        throw ServerConfiguration.Problem.unsupportedDatabase(configuration.database)
    }
    let store = try store ?? SQLiteRunStore(path: path)
    let service = RunService(store: store, leaseSeconds: configuration.leaseSeconds, logger: logger)
    let router = buildRouter(service: service, configuration: configuration)
    var services: [any Service] = []
    if let interval = configuration.reaperInterval { services.append(Reaper(service: service, interval: interval)) }
    if configuration.dispatchWebhooks {
        services.append(WebhookDispatcher(service: service, settings: .init(schedule: configuration.webhookRetryMs)))
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "runwarden"),
        services: services,
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
}

/// The router with every route of SPEC §2 this server implements, behind one error middleware.
public func buildRouter(service: RunService, configuration: ServerConfiguration) -> Router<RunwardenRequestContext> {
    let maxBody = configuration.maxBodyBytes
    let routes =
        RunRoutes(service: service, maxBody: maxBody).routes
        + EventRoutes(service: service).routes
        + StreamRoutes(service: service, keepAlive: configuration.streamKeepAlive).routes
        + WebhookRoutes(service: service, maxBody: maxBody).routes
        + RunnerRoutes(service: service, maxBody: maxBody).routes
        + TaskAndLockRoutes(service: service).routes
        + HealthRoutes(service: service).routes
    let authenticator = Authenticator(clientToken: configuration.clientToken, runnerToken: configuration.runnerToken)

    let router = Router(context: RunwardenRequestContext.self)
    router.add(middleware: ErrorMiddleware(routes: RouteMatcher(routes)))
    for route in routes {
        let handler = route.handler
        let role = route.role
        router.on(RouterPath(route.path), method: route.method) { request, context -> Response in
            var context = context
            if let role {
                (context.role, context.token) = try authenticator.authorize(request, as: role)
            }
            return try await handler(request, context)
        }
    }
    return router
}
