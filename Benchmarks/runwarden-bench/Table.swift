import ArgumentParser
import Foundation
import RunwardenCore

/// The human-readable tables: Runwarden alone after a run, or side by side with the Prefect
/// peer's JSON (`runwarden-bench compare`), as Markdown for BENCHMARKS.md.
enum Table {
    static func print(_ doc: JSONValue) {
        let w = doc["workloads"] ?? .object([])
        say("Runwarden \(doc["version"]?.stringValue ?? "")   RSS idle \(fmt(doc["rss_mb_idle"]?.doubleValue)) MiB, peak \(fmt(doc["rss_mb_peak"]?.doubleValue)) MiB, after \(fmt(doc["rss_mb_after"]?.doubleValue)) MiB")
        for (title, section) in [("SQLite", w), ("PostgreSQL", w["postgres"])] {
            guard let section, section["lifecycle"] != nil || section["read"] != nil else { continue }
            say("")
            say("[\(title)]")
            if let lifecycle = section["lifecycle"]?.objectMembers {
                let header = "lifecycle   runs/s   req/s     ok  fail   create p50/p99   claim p50/p99   running p50/p99   succeeded p50/p99   get p50/p99  cores srv/gen/other  failures"
                say(header)
                say(String(repeating: "-", count: header.count))
                for member in lifecycle {
                    let r = member.value
                    func pp(_ kind: String) -> String {
                        "\(fmt(r.at("latency_ms.\(kind).p50")?.doubleValue, 2))/\(fmt(r.at("latency_ms.\(kind).p99")?.doubleValue, 2))"
                    }
                    say(
                        pad("c=\(member.key)", 10, right: false) + pad(fmt(r["runs_per_s"]?.doubleValue), 8) + pad(fmt(r["requests_per_s"]?.doubleValue, 0), 8)
                            + pad(int(r["ok"]), 7) + pad(int(r["failed"]), 6) + pad(pp("create"), 17) + pad(pp("claim"), 16) + pad(pp("running"), 18)
                            + pad(pp("succeeded"), 20) + pad(pp("get"), 14) + pad(cores(r["cpu"]), 21) + "  " + failures(r["failures"]))
                }
                say("(latencies in ms)")
            }
            if let read = section["read"]?.objectMembers {
                say("")
                let header = "reads     workload      req/s      ok  fail   p50 ms   p99 ms  cores srv/gen/other  failures"
                say(header)
                say(String(repeating: "-", count: header.count))
                for member in read {
                    for name in ["read", "healthz"] {
                        guard let r = section[name]?[member.key] else { continue }
                        say(
                            pad("c=\(member.key)", 10, right: false) + pad(name, 9, right: false) + pad(fmt(r["reads_per_s"]?.doubleValue), 10)
                                + pad(int(r["ok"]), 8) + pad(int(r["failed"]), 6) + pad(fmt(r["p50_ms"]?.doubleValue, 3), 9)
                                + pad(fmt(r["p99_ms"]?.doubleValue, 3), 9) + pad(cores(r["cpu"]), 21) + "  " + failures(r["failures"]))
                    }
                    say("          read/healthz = \(fmt(member.value["read_over_health"]?.doubleValue, 3))")
                }
            }
        }
        if let create = w["create"]?.objectMembers?.first {
            let r = create.value
            say("")
            say("create (POST /v1/runs alone) c=\(create.key): \(fmt(r["reads_per_s"]?.doubleValue)) creates/s, p50 \(fmt(r["p50_ms"]?.doubleValue, 2)) ms, p99 \(fmt(r["p99_ms"]?.doubleValue, 2)) ms, \(int(r["failed"])) failed, cores server/generator/other \(cores(r["cpu"]))")
        }
        if let probe = w["durability"], probe["checked"] == .bool(true) {
            say("")
            say("durability: \(int(probe["sync_calls"])) fsync/fdatasync calls for \(int(probe["commits"])) sequential commits — \(probe["synced_per_commit"] == .bool(true) ? "every commit synced" : "commits NOT synced before they are acknowledged")")
        }
        if let fan = w["fanout"] {
            say("")
            say("fan-out: \(int(fan["tasks"])) tasks (\(int(fan["chains"])) needs chains × \(int(fan["chain_length"])), \(int(fan["workspaces"])) shared workspaces), \(int(fan["runners"])) runner loops: \(fan["status"]?.stringValue ?? "-") in \(fmt(fan["finish_s"]?.doubleValue, 2)) s, \(fmt(fan["claims_per_s"]?.doubleValue)) claims/s, \(int(fan["failed"])) failed")
        }
        if let hooks = w["webhooks"] {
            say("webhooks: \(int(hooks["deliveries"]))/\(int(hooks["expected"])) deliveries at \(fmt(hooks["deliveries_per_s"]?.doubleValue)) /s; commit-to-receipt burst p50/p99 \(fmt(hooks.at("commit_to_receipt_ms.burst.p50")?.doubleValue))/\(fmt(hooks.at("commit_to_receipt_ms.burst.p99")?.doubleValue)) ms, paced p50/p99 \(fmt(hooks.at("commit_to_receipt_ms.paced.p50")?.doubleValue))/\(fmt(hooks.at("commit_to_receipt_ms.paced.p99")?.doubleValue)) ms")
        }
        if let wake = w["wake"]?.objectMembers {
            for member in wake {
                let r = member.value
                say("wake \(pad(member.key, 6)) waiters: p50 \(fmt(r.at("wake_ms.p50")?.doubleValue, 3)) ms, p99 \(fmt(r.at("wake_ms.p99")?.doubleValue, 3)) ms over \(int(r["changes"])) changes (missed \(int(r["missed"]))); RSS \(fmt(r["rss_mb_before"]?.doubleValue)) → \(fmt(r["rss_mb_parked"]?.doubleValue)) MiB parked = \(fmt(r["rss_kib_per_waiter"]?.doubleValue, 2)) KiB per waiter")
            }
        }
        if let memory = w["memory"] {
            say("memory: RSS idle \(fmt(memory["rss_mb_idle"]?.doubleValue)) MiB; after \(int(memory["runs"])) finished runs \(fmt(memory["rss_mb_after"]?.doubleValue)) MiB (peak \(fmt(memory["rss_mb_peak"]?.doubleValue))); database \(fmt(memory["database_mb"]?.doubleValue)) MiB = \(fmt(memory["database_mb_per_100k_runs"]?.doubleValue)) MiB per 100k runs")
        }
        printWidth([("sqlite", w["width"]), ("postgres", w["postgres"]?["width"])])
        if let backlog = w["backlog"] { printBacklog(backlog) }
    }

    /// width: per store and W, the one-run and many-runs phases and their ratio.
    static func printWidth(_ stores: [(String, JSONValue?)]) {
        let rows = stores.compactMap { store, section in section?.objectMembers.map { (store, $0) } }
        guard !rows.isEmpty else { return }
        say("")
        let runners = rows.first?.1.first.map { int($0.value["runners"]) } ?? "-"
        say("width (\(runners) runner loops: claim → running → succeeded; s = first claim → last task succeeded)")
        let header = "store       tasks  phase      status         s    done   trans/s    claim p50/p99      all p50/p99  fail  failures"
        say(header)
        say(String(repeating: "-", count: header.count))
        for (store, members) in rows {
            for member in members {
                let r = member.value
                for (phase, key) in [("one run", "one_run"), ("many runs", "many_runs")] {
                    guard let p = r[key] else { continue }
                    let lead = pad(store, 9, right: false) + pad(member.key, 8) + "  " + pad(phase, 10, right: false)
                    let status = p["status"]?.stringValue ?? "-"
                    guard status == "finished" || status == "unfinished" else {
                        let detail = p["http_status"].map { "HTTP \(int($0)): " } ?? ""
                        say(lead + " " + status + " (" + detail + String((p["error"]?.stringValue ?? failures(p["failures"])).prefix(120)) + ")")
                        continue
                    }
                    func pp(_ kind: String) -> String {
                        "\(fmt(p.at("latency_ms.\(kind).p50")?.doubleValue, 1))/\(fmt(p.at("latency_ms.\(kind).p99")?.doubleValue, 1))"
                    }
                    say(
                        lead + " " + pad(status, 10, right: false) + pad(fmt(p["seconds"]?.doubleValue, 2), 8) + pad(int(p["tasks_done"]), 8)
                            + pad(fmt(p["transitions_per_s"]?.doubleValue), 10) + pad(pp("claim"), 17) + pad(pp("transition"), 17)
                            + pad(int(p["failed"]), 6) + "  " + failures(p["failures"]))
                }
                let ratio = r["one_over_many"]?.doubleValue
                let verdict = r["target_met"].map { $0 == .bool(true) ? "met" : ($0 == .bool(false) ? "missed" : "-") } ?? "-"
                say(pad("", 19) + "one/many = \(fmt(ratio, 3)) (\(r["ratio_basis"]?.stringValue ?? "no ratio")); target ≤ 1.3: \(verdict)")
            }
        }
        say("(latencies in ms; all = claim, running and succeeded together)")
    }

    /// backlog: lifecycles/s at c=16 without and with B unclaimable tasks queued.
    static func printBacklog(_ backlog: JSONValue) {
        guard let members = backlog.objectMembers, !members.isEmpty else { return }
        say("")
        say("backlog (lifecycle c=16 on a fresh server, then again with B queued tasks no runner can take)")
        let header = "backlog   queued   without runs/s  claim p50/p99   with runs/s  claim p50/p99   with/without  target ≥ 0.8  failed w/o / with"
        say(header)
        say(String(repeating: "-", count: header.count))
        for member in members {
            let r = member.value
            func pp(_ phase: String) -> String {
                "\(fmt(r.at("\(phase).latency_ms.claim.p50")?.doubleValue, 2))/\(fmt(r.at("\(phase).latency_ms.claim.p99")?.doubleValue, 2))"
            }
            var verdict = r["target_met"].map { $0 == .bool(true) ? "met" : ($0 == .bool(false) ? "missed" : "-") } ?? "-"
            if r["backlog_complete"] == .bool(false) { verdict = "incomplete" }
            say(
                pad(member.key, 7, right: false) + pad(int(r["backlog_tasks_queued"]), 9) + pad(fmt(r.at("without.runs_per_s")?.doubleValue), 17)
                    + pad(pp("without"), 15) + pad(fmt(r.at("with.runs_per_s")?.doubleValue), 14) + pad(pp("with"), 15)
                    + pad(fmt(r["with_over_without"]?.doubleValue, 3), 15) + pad(verdict, 14)
                    + pad("\(int(r.at("without.failed"))) / \(int(r.at("with.failed")))", 19))
        }
        say("(claim latencies in ms)")
        for member in members where member.value["backlog_complete"] == .bool(false) {
            say("backlog \(member.key): only \(int(member.value["backlog_tasks_queued"])) tasks queued: \(failures(member.value["backlog_create_failures"])) \(member.value["backlog_create_failure_samples"]?.objectMembers?.first?.value.stringValue?.prefix(160) ?? "")")
        }
    }

    static func int(_ value: JSONValue?) -> String { value?.doubleValue.map { String(Int($0)) } ?? "-" }

    /// "server/generator/other" cores of a level.
    static func cores(_ cpu: JSONValue?) -> String {
        guard let cpu else { return "-" }
        return "\(fmt(cpu["server_cores"]?.doubleValue, 2))/\(fmt(cpu["bench_cores"]?.doubleValue, 2))/\(fmt(cpu["other_cores"]?.doubleValue, 2))"
    }

    static func failures(_ value: JSONValue?) -> String {
        guard let members = value?.objectMembers, !members.isEmpty else { return "-" }
        return members.map { "\($0.key):\(int($0.value))" }.joined(separator: ", ")
    }
}

/// `runwarden-bench compare RUNWARDEN.json PREFECT.json`: Markdown tables of both, and the
/// issue's targets with met/missed and the measured ratio.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Markdown tables of Runwarden and Prefect results side by side, and the targets.")

    @Argument(help: "Runwarden results JSON.") var runwarden = "Benchmarks/results/runwarden.json"
    @Argument(help: "Prefect results JSON (Benchmarks/peer/run-prefect.sh).") var prefect = "Benchmarks/results/prefect.json"

    func run() throws {
        let rw = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: runwarden)))
        let pf = try? JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: prefect)))
        let rwW = rw["workloads"] ?? .object([])
        let pfW = pf?["workloads"] ?? .object([])
        let pfName = "Prefect \(pf?["version"]?.stringValue ?? "")"
        func d(_ v: JSONValue?, _ path: String) -> Double? { v?.at(path)?.doubleValue }
        func cell(_ value: Double?, _ digits: Int = 1) -> String { fmt(value, digits) }

        say("### lifecycle (runs/s; latency p50 / p99 ms)\n")
        say("| concurrency | Runwarden runs/s | \(pfName) runs/s | ratio | Runwarden fails | Prefect fails | Runwarden create | Prefect create | Runwarden state change (claim, running, succeeded) | Prefect set_state | Runwarden get | Prefect get | Runwarden CPU cores server / load generator / other |")
        say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        // Parsed JSON objects do not keep their member order: levels in numeric order.
        func levels(_ section: JSONValue?) -> [String] {
            (section?.objectMembers?.map(\.key) ?? []).sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
        }
        for level in levels(rwW["lifecycle"]) {
            let r = rwW["lifecycle"]?[level]
            let p = pfW["lifecycle"]?[level]
            func lat(_ v: JSONValue?, _ kind: String) -> String { "\(cell(d(v, "latency_ms.\(kind).p50"), 2)) / \(cell(d(v, "latency_ms.\(kind).p99"), 2))" }
            let ratio = (d(r, "runs_per_s") ?? 0) / max(d(p, "runs_per_s") ?? 0, 1e-9)
            say("| \(level) | \(cell(d(r, "runs_per_s"))) | \(cell(d(p, "runs_per_s"), 2)) | \(p == nil ? "-" : fmt(ratio, 0) + "×") | \(Table.int(r?["failed"])) | \(Table.int(p?["failed"])) | \(lat(r, "create")) | \(lat(p, "create")) | \(lat(r, "set_state")) | \(lat(p, "set_state")) | \(lat(r, "get")) | \(lat(p, "get")) | \(Table.cores(r?["cpu"])) |")
        }
        say("\n### read and healthz (requests/s; latency p50 / p99 ms)\n")
        say("| concurrency | workload | Runwarden req/s | \(pfName) req/s | ratio | Runwarden fails | Prefect fails | Runwarden p50 / p99 | Prefect p50 / p99 | Runwarden read/health | Prefect read/health | Runwarden CPU cores server / load generator / other |")
        say("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for level in levels(rwW["read"]) {
            for name in ["read", "healthz"] {
                let r = rwW[name]?[level]
                let p = pfW[name]?[level]
                let ratio = (d(r, "reads_per_s") ?? 0) / max(d(p, "reads_per_s") ?? 0, 1e-9)
                say("| \(level) | \(name == "read" ? "GET run" : "health") | \(cell(d(r, "reads_per_s"))) | \(cell(d(p, "reads_per_s"))) | \(p == nil ? "-" : fmt(ratio, 0) + "×") | \(Table.int(r?["failed"])) | \(Table.int(p?["failed"])) | \(cell(d(r, "p50_ms"), 2)) / \(cell(d(r, "p99_ms"), 2)) | \(cell(d(p, "p50_ms"), 1)) / \(cell(d(p, "p99_ms"), 1)) | \(name == "read" ? cell(d(r, "read_over_health"), 3) : "") | \(name == "read" ? cell(d(p, "read_over_health"), 3) : "") | \(Table.cores(r?["cpu"])) |")
            }
        }
        say("\n### memory\n")
        say("| | Runwarden | \(pfName) |")
        say("|---|---:|---:|")
        say("| server RSS idle (MiB) | \(cell(d(rwW, "memory.rss_mb_idle") ?? d(rw, "rss_mb_idle"))) | \(cell(d(pf, "rss_mb_idle"))) |")
        say("| server RSS peak under load (MiB; Runwarden: lifecycle, read, fan-out, webhooks; Prefect: lifecycle, read) | \(cell(d(rw, "rss_mb_peak"))) | \(cell(d(pf, "rss_mb_peak"))) |")
        if let memory = rwW["memory"] {
            say("| RSS after \(Table.int(memory["runs"])) finished runs (MiB) | \(cell(d(memory, "rss_mb_after"))) | - |")
            say("| database size per 100k runs (MiB) | \(cell(d(memory, "database_mb_per_100k_runs"))) | - |")
        }

        // ---- targets ---------------------------------------------------------------------------
        say("\n### targets\n")
        say("| target | measured | verdict |")
        say("|---|---|---|")
        func verdict(_ ok: Bool?) -> String { ok.map { $0 ? "met" : "**missed**" } ?? "not measured" }
        let top = rwW["lifecycle"]?.objectMembers?.map(\.key).compactMap(Int.init).max().map(String.init) ?? "32"
        let bestPrefectRuns = pfW["lifecycle"]?.objectMembers?.compactMap { $0.value["runs_per_s"]?.doubleValue }.max()
        let bestPrefectReads = pfW["read"]?.objectMembers?.compactMap { $0.value["reads_per_s"]?.doubleValue }.max()
        if let runs = d(rwW, "lifecycle.\(top).runs_per_s") {
            let ratio = bestPrefectRuns.map { runs / $0 }
            say("| lifecycle runs/s at c=\(top) ≥ 200 × Prefect's best (\(cell(bestPrefectRuns, 2))) | \(cell(runs)) runs/s = \(fmt(ratio, 0))× | \(verdict(ratio.map { $0 >= 200 })) |")
        }
        if let reads = d(rwW, "read.\(top).reads_per_s") {
            let ratio = bestPrefectReads.map { reads / $0 }
            say("| reads/s at c=\(top) ≥ 200 × Prefect's best (\(cell(bestPrefectReads))) | \(cell(reads)) reads/s = \(fmt(ratio, 0))× | \(verdict(ratio.map { $0 >= 200 })) |")
        }
        let fails = ["lifecycle", "read", "healthz"].compactMap { d(rwW, "\($0).\(top).failed") }
        if !fails.isEmpty {
            say("| no request fails at c=\(top) | \(Int(fails.reduce(0, +))) failed (lifecycle \(Table.int(rwW.at("lifecycle.\(top).failed"))), read \(Table.int(rwW.at("read.\(top).failed"))), healthz \(Table.int(rwW.at("healthz.\(top).failed")))) | \(verdict(fails.reduce(0, +) == 0)) |")
        }
        if let share = d(rwW, "read.\(top).read_over_health") {
            say("| read ≥ 60 % of /healthz at c=\(top) | \(fmt(share * 100, 1)) % | \(verdict(share >= 0.6)) |")
        }
        let biggest = rwW["wake"]?.objectMembers?.max { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }
        if let biggest {
            let p99 = d(biggest.value, "wake_ms.p99")
            let perWaiter = d(biggest.value, "rss_kib_per_waiter")
            say("| wake p99 ≤ 5 ms with \(biggest.key) waiters parked | p99 \(cell(p99, 3)) ms (p50 \(cell(d(biggest.value, "wake_ms.p50"), 3)) ms, \(Table.int(biggest.value["changes"])) changes) | \(verdict(p99.map { $0 <= 5 })) |")
            say("| ≤ 10 KiB RSS per parked waiter (\(biggest.key)) | \(cell(perWaiter, 2)) KiB | \(verdict(perWaiter.map { $0 <= 10 })) |")
        }
        if let idle = d(rwW, "memory.rss_mb_idle") ?? d(rw, "rss_mb_idle") {
            let megabytes = idle * 1_048_576 / 1_000_000
            say("| server RSS ≤ 25 MB idle | \(cell(idle)) MiB = \(cell(megabytes)) MB | \(verdict(megabytes <= 25)) |")
        }
        if let probe = rwW["durability"], probe["checked"] == .bool(true) {
            let synced = probe["synced_per_commit"] == .bool(true)
            say("| no target met by dropping durability | \(Table.int(probe["sync_calls"])) fsync/fdatasync calls for \(Table.int(probe["commits"])) sequential commits (strace) | \(synced ? "met" : "**missed**: commits are acknowledged before they are synced") |")
        } else {
            say("| no target met by dropping durability | not checked (\(rwW.at("durability.reason")?.stringValue ?? "no probe")) | not measured |")
        }
    }
}
