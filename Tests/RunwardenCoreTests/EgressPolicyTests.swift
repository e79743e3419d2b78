import RunwardenCore
import Testing

@Suite("Webhook egress policy")
struct EgressPolicyTests {
    @Test(
        "The default policy denies link-local, unspecified and multicast space, and nothing else",
        arguments: [
            ("169.254.169.254", false), ("fe80::1", false), ("0.0.0.0", false), ("::", false), ("224.0.0.1", false),
            ("ff02::1", false), ("::ffff:169.254.169.254", false), ("8.8.8.8", true), ("127.0.0.1", true), ("::1", true),
            ("10.1.2.3", true), ("2001:db8::1", true), ("169.255.0.1", true), ("fec0::1", true),
        ])
    func defaults(address: String, permitted: Bool) throws {
        #expect(EgressPolicy.standard.permits(try #require(IPAddress(address))) == permitted)
    }

    @Test("Deny adds to the defaults; allow wins over both")
    func denyAndAllow() throws {
        let policy = EgressPolicy(
            deny: try #require(EgressPolicy.networks("10.0.0.0/8, fd00::/8")), allow: try #require(EgressPolicy.networks("10.9.0.0/16,169.254.7.7")))
        #expect(!policy.permits(try #require(IPAddress("10.1.1.1"))))
        #expect(policy.permits(try #require(IPAddress("10.9.3.4"))))
        #expect(!policy.permits(try #require(IPAddress("fd12::1"))))
        #expect(policy.permits(try #require(IPAddress("169.254.7.7"))))
        #expect(!policy.permits(try #require(IPAddress("169.254.7.8"))))
    }

    @Test("Lists that are not networks are refused", arguments: ["10.0.0.0/33", "fe80::/129", "example.com", "10.0.0.0/x", "1.2.3/8", "10.0.0.0/8,"])
    func badLists(text: String) {
        #expect(text == "10.0.0.0/8," ? EgressPolicy.networks(text)?.count == 1 : EgressPolicy.networks(text) == nil)
    }

    @Test("URL hosts in every address form the resolver takes are judged as addresses")
    func urlHosts() {
        for url in ["http://169.254.169.254/", "http://2852039166/", "http://0xa9.0xfe.0xa9.0xfe/", "http://[fe80::1]:80/", "https://[::ffff:a9fe:a9fe]/"] {
            #expect(EgressPolicy.standard.problem(withURL: url) != nil, "\(url)")
        }
        for url in ["http://hooks.example/", "http://127.0.0.1:9000/", "https://[2001:db8::1]/", "http://1password.example/"] {
            #expect(EgressPolicy.standard.problem(withURL: url) == nil, "\(url)")
        }
    }
}
