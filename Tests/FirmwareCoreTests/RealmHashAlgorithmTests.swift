import FirmwareCore
import Testing

/// The one enum of a Realm's hash algorithm, shared by the firmware, KVM, the RIM model and the CLI.
@Suite struct RealmHashAlgorithmTests {
  @Test func encodesAsTheRMMDoes() {
    #expect(RealmHashAlgorithm.sha256.rmiValue == 0 && RealmHashAlgorithm.sha512.rmiValue == 1)
    for algorithm in RealmHashAlgorithm.allCases {
      #expect(RealmHashAlgorithm(rmiValue: UInt64(algorithm.rmiValue)) == algorithm)
    }
    #expect(RealmHashAlgorithm(rmiValue: 2) == nil)
    #expect(RSIConstant.hashSHA256 == 0 && RSIConstant.hashSHA512 == 1)
  }

  /// The names are `--measurement-algo`'s values and `measure --json`'s "algorithm".
  @Test func namesAndDigestSizes() {
    #expect(RealmHashAlgorithm.allCases.map(\.rawValue) == ["sha256", "sha512"])
    #expect(RealmHashAlgorithm.allCases.map(\.digestSize) == [32, 64])
  }
}
