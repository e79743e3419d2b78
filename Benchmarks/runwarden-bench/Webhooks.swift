import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunwardenCore

/// webhooks: a local receiver (a small asyncio HTTP/1.1 server in a python3 subprocess, keep-alive,
/// answering 200 at once) subscribed to every event (`*`). A burst of lifecycles fills the outbox;
/// deliveries/s is what the receiver got per second from its first to its last receipt. Then a
/// paced series (one lifecycle at a time, with pauses) gives commit-to-receipt latency without a
/// backlog. Commit-to-receipt = receipt (receiver's wall clock) − the event's `timestamp` (the
/// server's wall clock when the change was made, millisecond resolution, same machine).
enum WebhookWorkload {
    static let receiverSource = #"""
        import asyncio, datetime, json, sys, time
        records = []
        def summary():
            out = []
            for t, body in records:
                try:
                    j = json.loads(body)
                    ts = datetime.datetime.fromisoformat(j["timestamp"].replace("Z", "+00:00")).timestamp()
                    out.append([t, j.get("event_id"), j.get("type"), j.get("run_id"), round((t - ts) * 1000, 3)])
                except Exception as e:
                    out.append([t, None, "unreadable", None, None])
            return out
        class Receiver(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport, self.buf = transport, b""
            def data_received(self, data):
                now = time.time()
                self.buf += data
                while True:
                    end = self.buf.find(b"\r\n\r\n")
                    if end < 0:
                        return
                    head = self.buf[:end].decode("latin-1").split("\r\n")
                    method, path = head[0].split(" ")[:2]
                    length = 0
                    for line in head[1:]:
                        name, _, value = line.partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value.strip())
                    if len(self.buf) < end + 4 + length:
                        return
                    body = self.buf[end + 4:end + 4 + length]
                    self.buf = self.buf[end + 4 + length:]
                    if method == "POST":
                        records.append((now, body))
                        payload = b""
                    elif path.startswith("/records"):
                        payload = json.dumps(summary()).encode()
                    else:
                        payload = json.dumps({"count": len(records)}).encode()
                    self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        async def main():
            loop = asyncio.get_running_loop()
            server = await loop.create_server(Receiver, "127.0.0.1", 0, backlog=1024)
            port = server.sockets[0].getsockname()[1]
            with open(sys.argv[1] + ".tmp", "w") as f:
                f.write(str(port))
            import os
            os.rename(sys.argv[1] + ".tmp", sys.argv[1])
            await asyncio.Event().wait()
        asyncio.run(main())
        """#

    struct Receipt {
        let time: Double
        let eventID: String
        let type: String
        let runID: String
        let latencyMs: Double
    }

    static func startReceiver(directory: String, http: HTTPClient) async throws -> (Child, BenchClient, Int) {
        let script = directory + "/webhook-receiver.py"
        try receiverSource.write(toFile: script, atomically: true, encoding: .utf8)
        let portFile = directory + "/webhook-receiver.port"
        try? FileManager.default.removeItem(atPath: portFile)
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/env"
        let child = try Child(
            executable: python, arguments: (python == "/usr/bin/env" ? ["python3"] : []) + [script, portFile],
            logPath: directory + "/webhook-receiver.log")
        let start = ContinuousClock.now
        while true {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text) {
                return (child, BenchClient(http: http, base: "http://127.0.0.1:\(port)"), port)
            }
            if !child.isRunning { throw BenchError("webhook receiver exited: \(child.logTail())") }
            if ContinuousClock.now - start > .seconds(20) {
                child.stop()
                throw BenchError("webhook receiver did not start: \(child.logTail())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func receipts(_ receiver: BenchClient) async throws -> [Receipt] {
        let answer = try await receiver.send(.GET, "/records", timeout: .seconds(60))
        guard let rows = try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [[Any]] else { return [] }
        return rows.compactMap { row in
            guard row.count == 5, let time = row[0] as? Double, let id = row[1] as? String, let type = row[2] as? String,
                let runID = row[3] as? String, let latency = (row[4] as? NSNumber)?.doubleValue
            else { return nil }
            return Receipt(time: time, eventID: id, type: type, runID: runID, latencyMs: latency)
        }
    }

    static func count(_ receiver: BenchClient) async throws -> Int {
        struct Count: Decodable { let count: Int }
        return try await receiver.send(.GET, "/count").decode(Count.self).count
    }

    static func run(_ client: BenchClient, serverPID: Int32? = nil, directory: String, burstRuns: Int, pacedRuns: Int) async throws -> JSONValue {
        let meter = CPUMeter(serverPID: serverPID)
        let (receiverProcess, receiver, port) = try await startReceiver(directory: directory, http: client.http)
        defer { receiverProcess.stop() }
        let subscribed = try await client.setup(
            .POST, "/v1/webhooks", body: #"{"url":"http://127.0.0.1:\#(port)/hook","events":["*"],"description":"runwarden-bench"}"#)
        guard subscribed.status == 201 else { throw BenchError("POST /v1/webhooks: HTTP \(subscribed.status) \(subscribed.text)") }
        let webhookID = try subscribed.decode(WebhookCreated.self).id

        // Burst: lifecycles at concurrency 8, as fast as they go.
        let burstStart = Date().timeIntervalSince1970
        let bound = Bound(maxIterations: burstRuns, duration: .seconds(60))
        let (burst, burstWall) = await runLevel(concurrency: 8, bound: bound, keepIDs: burstRuns, iteration: LifecycleWorkload.iteration(client, runnerPrefix: "hook"))
        guard let sampleRun = burst.okIDs.first else { throw BenchError("webhooks: no lifecycle succeeded: \(burst.failureSamples)") }
        let eventsPerRun = try await client.setup(.GET, "/v1/runs/\(sampleRun)/events?limit=500").decode(EventPage.self).events.count
        let expectedBurst = eventsPerRun * burst.ok
        say("  webhooks: burst of \(burst.ok) runs (\(eventsPerRun) events each) in \(fmt(burstWall, 2)) s; draining …")
        let drainDeadline = ContinuousClock.now + .seconds(180)
        while try await count(receiver) < expectedBurst, ContinuousClock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(100))
        }

        // Paced: one lifecycle at a time, 100 ms apart.
        var paced = Tally(keepIDs: pacedRuns)
        let lifecycle = LifecycleWorkload.iteration(client, runnerPrefix: "hook-paced")
        for index in 0..<pacedRuns {
            await lifecycle(0, index, &paced)
            try await Task.sleep(for: .milliseconds(100))
        }
        let expectedTotal = expectedBurst + eventsPerRun * paced.ok
        while try await count(receiver) < expectedTotal, ContinuousClock.now < drainDeadline + .seconds(30) {
            try await Task.sleep(for: .milliseconds(100))
        }
        let all = try await receipts(receiver)
        var seen = Set<String>()
        var duplicates = 0
        var burstReceipts: [Receipt] = []
        var pacedReceipts: [Receipt] = []
        let burstSet = Set(burst.okIDs)
        let pacedSet = Set(paced.okIDs)
        for receipt in all {
            guard seen.insert(receipt.eventID).inserted else {
                duplicates += 1
                continue
            }
            if burstSet.contains(receipt.runID) { burstReceipts.append(receipt) } else if pacedSet.contains(receipt.runID) { pacedReceipts.append(receipt) }
        }
        let times = burstReceipts.map(\.time)
        let span = (times.max() ?? 0) - (times.min() ?? 0)
        let perSecond = span > 0 ? Double(max(0, burstReceipts.count - 1)) / span : nil
        let fromBurstStart = (times.max() ?? burstStart) - burstStart
        let burstLatency = burstReceipts.map(\.latencyMs).sorted()
        let pacedLatency = pacedReceipts.map(\.latencyMs).sorted()
        let pendingAtEnd = max(0, expectedTotal - seen.count)
        say("  webhooks: \(burstReceipts.count)/\(expectedBurst) burst deliveries at \(fmt(perSecond)) /s; commit-to-receipt p99 burst \(fmt(percentile(burstLatency, 99))) ms, paced p50 \(fmt(percentile(pacedLatency, 50))) / p99 \(fmt(percentile(pacedLatency, 99))) ms")
        return .object([
            "webhook_id": .string(webhookID),
            "events_per_run": .int(Int64(eventsPerRun)),
            "burst_runs": .int(Int64(burst.ok)),
            "burst_failed": .int(Int64(burst.failed)),
            "burst_runs_per_s": number(Double(burst.ok) / burstWall),
            "deliveries": .int(Int64(burstReceipts.count)),
            "expected": .int(Int64(expectedBurst)),
            "deliveries_per_s": number(perSecond),
            "deliveries_per_s_from_burst_start": number(fromBurstStart > 0 ? Double(burstReceipts.count) / fromBurstStart : nil),
            "drain_s": number(fromBurstStart),
            "commit_to_receipt_ms": .object([
                "burst": .object([
                    "p50": number(percentile(burstLatency, 50)), "p99": number(percentile(burstLatency, 99)),
                    "max": number(burstLatency.last), "n": .int(Int64(burstLatency.count)),
                ]),
                "paced": .object([
                    "p50": number(percentile(pacedLatency, 50)), "p99": number(percentile(pacedLatency, 99)),
                    "max": number(pacedLatency.last), "n": .int(Int64(pacedLatency.count)),
                ]),
            ]),
            "paced_runs": .int(Int64(paced.ok)),
            "duplicates": .int(Int64(duplicates)),
            "missing_at_end": .int(Int64(pendingAtEnd)),
            "cpu": meter.finish(),
        ])
    }
}
