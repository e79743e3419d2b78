import Testing
import RunwardenCore

@Suite("Status report parsing")
struct ReportParsingTests {
    static func errors(_ body: String) -> [FieldError] {
        switch StatusReport.parse(json(body)) {
        case .success: return []
        case .failure(let failure): return failure.errors
        }
    }

    @Test func aFullReportParsesEveryField() throws {
        let report = try StatusReport.parse(
            json(
                #"{"status": "failed", "attempt": 2, "exit_code": -9, "error": {"code": "exit_code", "message": "killed"}, "output_ref": "s3://bucket/x", "progress": {"done": 3, "total": 10}, "timestamp": "2026-01-01T00:00:01.250Z"}"#
            )
        ).get()
        #expect(report.status == .failed)
        #expect(report.attempt == 2)
        #expect(report.exitCode == -9)
        #expect(report.error == TaskError(code: "exit_code", message: "killed", retryable: false))
        #expect(report.outputRef == "s3://bucket/x")
        #expect(report.progress == TaskProgress(done: 3, total: 10))
        #expect(report.timestamp == t0.adding(milliseconds: 1_250))
    }

    @Test func aMinimalReportHasOnlyAStatus() throws {
        let report = try StatusReport.parse(json(#"{"status": "running"}"#)).get()
        #expect(report == StatusReport(status: .running))
    }

    @Test(arguments: TaskStatus.reportable)
    func everyReportableStatusParses(_ status: TaskStatus) throws {
        let report = try StatusReport.parse(json(#"{"status": "\#(status.rawValue)"}"#)).get()
        #expect(report.status == status)
    }

    @Test func theReportableStatusesAreRunningAndTheRunnerEndings() {
        #expect(TaskStatus.reportable == [.running, .succeeded, .failed, .canceled, .timedOut])
    }

    @Test func anErrorsRetryableDefaultsFromItsCodeUnlessGiven() throws {
        let inferred = try StatusReport.parse(json(#"{"status": "failed", "error": {"code": "launch_failed"}}"#)).get()
        #expect(inferred.error?.retryable == true)
        #expect(inferred.error?.message == "")
        let given = try StatusReport.parse(
            json(#"{"status": "failed", "error": {"code": "launch_failed", "message": "m", "retryable": false}}"#)
        ).get()
        #expect(given.error?.retryable == false)
    }

    @Test func aTimestampWithAnOffsetIsReadAsTheSameInstant() throws {
        let report = try StatusReport.parse(json(#"{"status": "running", "timestamp": "2026-01-01T02:00:00.500+02:00"}"#)).get()
        #expect(report.timestamp == t0.adding(milliseconds: 500))
    }

    @Test(arguments: [
        (#"[]"#, "body"),
        (#"{}"#, "status"),
        (#"{"status": null}"#, "status"),
        (#"{"status": 3}"#, "status"),
        (#"{"status": "bogus"}"#, "status"),
        (#"{"status": "pending"}"#, "status"),
        (#"{"status": "queued"}"#, "status"),
        (#"{"status": "dispatched"}"#, "status"),
        (#"{"status": "canceling"}"#, "status"),
        (#"{"status": "skipped"}"#, "status"),
        (#"{"status": "RUNNING"}"#, "status"),
        (#"{"status": "running", "attempt": 0}"#, "attempt"),
        (#"{"status": "running", "attempt": "1"}"#, "attempt"),
        (#"{"status": "failed", "exit_code": 1.5}"#, "exit_code"),
        (#"{"status": "failed", "exit_code": "1"}"#, "exit_code"),
        (#"{"status": "failed", "error": "boom"}"#, "error"),
        (#"{"status": "failed", "error": {"message": "boom"}}"#, "error.code"),
        (#"{"status": "failed", "error": {"code": "x", "detail": "y"}}"#, "error.detail"),
        (#"{"status": "failed", "error": {"code": "x", "retryable": "yes"}}"#, "error.retryable"),
        (#"{"status": "running", "output_ref": ""}"#, "output_ref"),
        (#"{"status": "running", "output_ref": 5}"#, "output_ref"),
        (#"{"status": "running", "progress": {"done": 3}}"#, "progress"),
        (#"{"status": "running", "progress": {"total": 3}}"#, "progress"),
        (#"{"status": "running", "progress": {"done": null, "total": 3}}"#, "progress"),
        (#"{"status": "running", "progress": {"done": -1, "total": 3}}"#, "progress.done"),
        (#"{"status": "running", "progress": {"done": 1, "total": 3, "eta": 5}}"#, "progress.eta"),
        (#"{"status": "running", "progress": [1, 3]}"#, "progress"),
        (#"{"status": "running", "timestamp": "yesterday"}"#, "timestamp"),
        (#"{"status": "running", "timestamp": "2026-01-01 00:00:00"}"#, "timestamp"),
        (#"{"status": "running", "timestamp": 1767225600}"#, "timestamp"),
        (#"{"status": "running", "runner": "host-a"}"#, "runner"),
    ])
    func aBrokenReportGetsAFieldError(body: String, field: String) {
        let errors = Self.errors(body)
        #expect(errors.contains { $0.field == field }, "no error for \(field); got \(errors.map { "\($0.field): \($0.message)" })")
    }

    @Test func anUnreportableStatusNamesTheAllowedOnes() {
        let message = Self.errors(#"{"status": "dispatched"}"#).first?.message ?? ""
        for status in TaskStatus.reportable {
            #expect(message.contains(status.rawValue))
        }
    }
}
