import Crypto
import Foundation
import RunwardenCore

/// Signs webhook bodies per the Standard Webhooks specification: `v1,` + base64 of
/// HMAC-SHA256 over `id.timestamp.body`, keyed by the base64-decoded part after `whsec_`.
public enum WebhookSigner {
    public static func signature(id: String, timestamp: Int64, body: Data, secret: String) -> String? {
        guard let key = WebhookSecret.key(of: secret) else { return nil }
        var message = Data("\(id).\(timestamp).".utf8)
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }
}
