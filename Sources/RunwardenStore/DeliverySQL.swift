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

    /// The index the walk above and the "receiver is back" catch-up (`url = ? AND status =
    /// 'pending'`) use; created by each backend's migration.
    public static let pendingByURLIndex =
        "CREATE INDEX deliveries_pending_by_url ON deliveries (url, next_attempt_at, event_seq) WHERE status = 'pending'"
}
