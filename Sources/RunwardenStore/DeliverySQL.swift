/// SQL both backends run on the outbox, in the dialect they share.
public enum DeliverySQL {
    /// For each URL with pending deliveries, its oldest due one, oldest first.
    ///
    /// A URL whose receiver is down or black-holed can gather thousands of due rows; taking
    /// the oldest N rows overall would hand the dispatcher only those, while it attempts one
    /// URL at a time — so healthy receivers would wait behind it. Instead this walks the
    /// distinct pending URLs through `deliveries_pending_by_url` (a loose index scan: one
    /// seek per URL, not one row per delivery) and takes each URL's head with one more seek.
    /// `columns` are the columns to read (qualified by `deliveries.`), `now` and `limit` the
    /// backend's placeholders.
    public static func oldestDuePerURL(columns: String, now: String, limit: String) -> String {
        """
        WITH RECURSIVE pending_urls(url) AS (
            SELECT (SELECT url FROM deliveries WHERE status = 'pending' ORDER BY url LIMIT 1)
            UNION ALL
            SELECT (SELECT d.url FROM deliveries d WHERE d.status = 'pending' AND d.url > pending_urls.url ORDER BY d.url LIMIT 1)
            FROM pending_urls WHERE pending_urls.url IS NOT NULL
        )
        SELECT \(columns) FROM pending_urls JOIN deliveries ON deliveries.id = (
            SELECT d.id FROM deliveries d
            WHERE d.status = 'pending' AND d.url = pending_urls.url AND d.next_attempt_at <= \(now)
            ORDER BY d.next_attempt_at, d.event_seq LIMIT 1
        )
        ORDER BY deliveries.next_attempt_at, deliveries.event_seq LIMIT \(limit)
        """
    }

    /// For one URL (`url`), the oldest due delivery of each run with pending deliveries to it,
    /// runs oldest first (run ids sort by creation), at most `limit`: what may go to one receiver
    /// at once while each run's events still go one after another. Walks the URL's pending runs
    /// through `deliveries_pending_by_url_run`, one seek each (the walk's order is the answer's:
    /// PostgreSQL may join it out of order, hence the `ORDER BY`).
    /// `url`, `now` and `limit` are the backend's placeholders (`url` is used three times).
    public static func dueHeadsPerRun(columns: String, url: String, now: String, limit: String) -> String {
        """
        WITH RECURSIVE pending_runs(run_id) AS (
            SELECT (SELECT run_id FROM deliveries WHERE status = 'pending' AND url = \(url) ORDER BY run_id LIMIT 1)
            UNION ALL
            SELECT (SELECT d.run_id FROM deliveries d
                    WHERE d.status = 'pending' AND d.url = \(url) AND d.run_id > pending_runs.run_id ORDER BY d.run_id LIMIT 1)
            FROM pending_runs WHERE pending_runs.run_id IS NOT NULL
        )
        SELECT \(columns) FROM pending_runs JOIN deliveries ON deliveries.id = (
            SELECT h.id FROM deliveries h
            WHERE h.status = 'pending' AND h.url = \(url) AND h.run_id = pending_runs.run_id AND h.next_attempt_at <= \(now)
            ORDER BY h.next_attempt_at, h.event_seq LIMIT 1
        )
        ORDER BY pending_runs.run_id LIMIT \(limit)
        """
    }

    /// The index of the per-run walk above; created by each backend's migration.
    public static let pendingByURLAndRunIndex =
        "CREATE INDEX deliveries_pending_by_url_run ON deliveries (url, run_id, next_attempt_at, event_seq) WHERE status = 'pending'"

    /// The index the walk above and the "receiver is back" catch-up (`url = ? AND status =
    /// 'pending'`) use; created by each backend's migration.
    public static let pendingByURLIndex =
        "CREATE INDEX deliveries_pending_by_url ON deliveries (url, next_attempt_at, event_seq) WHERE status = 'pending'"
}
