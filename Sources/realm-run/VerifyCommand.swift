import ArgumentParser
import Attestation
import FirmwareCore
import FoundationEssentials
import Platform
import RealmMeasurement

/// `realm-run verify TOKEN`: checks a CCA attestation token (signatures, binding) and compares its
/// realm claims with reference values (``TokenVerifier``), one verdict line per check.
struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check a Realm's CCA attestation token against reference values.",
    discussion: """
      Decodes the token (the CBOR collection a Realm gets from configfs-tsm: tag 907 from TF-RMM \
      0.9.0, tag 399 from 0.8.0), verifies the realm token's signature with the Realm Attestation \
      Key it carries and the binding of that key to the platform token (its challenge is the hash \
      of the key), then compares the realm claims with the reference values: the hash algorithm, \
      the challenge, the RIM, REM0-REM3 and the RPV. Reference values come from --reference (the \
      output of 'realm-run measure --json') and the options below, which override it; a claim \
      without a reference value is 'not checked'. With --measurement-log the RIM is the one its \
      replay gives: each measured command of the launch log ('run' or 'measure' \
      --measurement-log), each image's bytes from the --image file with its digest (zeros after \
      a file up to the image's size, as the DTB's 64 KiB slot has them).

      The platform token's signature is checked only with --cpak. On the emulated CCA host the \
      CPAK is TF-A's published test key: a token that verifies with it shows that it is well \
      formed, never that it comes from a genuine, secure platform.

      Prints one line per check, e.g. 'RIM: match' or 'REM1: differs (expected ..., token ...)'. \
      Exit status: 0 when every check that was made passed, 6 when a signature, the binding or a \
      claim does not, 7 when the token, the reference file, the CPAK or the launch log cannot be \
      read or decoded, or no --image has the digest of an image the log names.
      """)

  @Argument(help: ArgumentHelp("The token: the raw CBOR a Realm read from configfs-tsm's outblob.", valueName: "token"))
  var token: String

  @Option(help: ArgumentHelp("Reference values: the output of 'realm-run measure --json'.", valueName: "file"))
  var reference: String?

  @Option(help: ArgumentHelp("The expected RIM, in hex (sets the hash algorithm by its length unless --reference gives one).", valueName: "hex"))
  var rim: String?

  @Option(help: ArgumentHelp("An expected REM: its index (0-3) and value in hex, e.g. 1=ab12.... Repeatable.", valueName: "n=hex"))
  var rem: [String] = []

  @Option(help: ArgumentHelp("The expected Realm Personalization Value as 'run' takes it: up to 64 bytes of text.", valueName: "string"))
  var realmPv: String?

  @Option(help: ArgumentHelp("The expected Realm Personalization Value in hex, up to 64 bytes (zero-padded).", valueName: "hex"))
  var rpv: String?

  @Option(help: ArgumentHelp("The challenge the Realm asked with, in hex, up to 64 bytes (zero-padded to 64 as the guest's driver does).", valueName: "hex"))
  var challenge: String?

  @Option(help: ArgumentHelp("The CCA Platform Attestation Key to check the platform signature with: PEM, JWK, DER or the raw point.", valueName: "file"))
  var cpak: String?

  @Option(help: ArgumentHelp("A launch measurement log to replay for the expected RIM (with --image).", valueName: "file"))
  var measurementLog: String?

  @Option(help: ArgumentHelp("An image the launch log names (kernel, initrd, firmware, DTB), found by its digest. Repeatable.", valueName: "file"))
  var image: [String] = []

  @Flag(help: "Print one JSON object (the token's form and profiles, 'accepted', and 'checks': claim, result, and expected, token or reason) instead of lines.")
  var json: Bool = false

  /// The reference values the options give, before --reference is read.
  struct Overrides: Equatable {
    var rim: [UInt8]?
    var rems: [[UInt8]?] = [nil, nil, nil, nil]
    var personalization: [UInt8]?
    var challenge: [UInt8]?
  }

  func validate() throws {
    _ = try overrides()
    if realmPv != nil && rpv != nil { throw ValidationError("--realm-pv and --rpv: give one") }
    if measurementLog != nil && rim != nil { throw ValidationError("--measurement-log and --rim: give one") }
    if measurementLog == nil && !image.isEmpty { throw ValidationError("--image is for --measurement-log") }
  }

  /// The RIM and algorithm --measurement-log's replay gives.
  func replayedRIM() throws -> RealmInitialMeasurement? {
    guard let measurementLog else { return nil }
    let log = try RealmLaunchLog(decoding: try Self.read(measurementLog, limit: RealmLaunchLog.maximumSize, what: "launch log"))
    let images = try image.map { path in try Self.read(path, limit: Self.maximumImageSize, what: "image") }
    return try log.replay(images: images)
  }

  /// The largest --image read (a Realm's RAM holds it whole).
  static let maximumImageSize = 4 << 30

  func overrides() throws(ValidationError) -> Overrides {
    var values = Overrides()
    if let rim {
      guard let bytes = TokenReference.bytes(hex: rim), [32, 48, 64].contains(bytes.count) else {
        throw ValidationError("--rim: not a 32-, 48- or 64-byte value in hex")
      }
      values.rim = bytes
    }
    for entry in rem {
      let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2, let index = Int(parts[0]), (0...3).contains(index) else {
        throw ValidationError("--rem \(entry): expected N=HEX with N from 0 to 3")
      }
      guard let bytes = TokenReference.bytes(hex: parts[1]), [32, 48, 64].contains(bytes.count) else {
        throw ValidationError("--rem \(entry): not a 32-, 48- or 64-byte value in hex")
      }
      guard values.rems[index] == nil else { throw ValidationError("--rem \(index) given twice") }
      values.rems[index] = bytes
    }
    if let realmPv {
      guard let bytes = TokenReference.padded(Array(realmPv.utf8)) else {
        throw ValidationError("--realm-pv: \(realmPv.utf8.count) bytes; at most 64")
      }
      values.personalization = bytes
    }
    if let rpv {
      guard let raw = TokenReference.bytes(hex: rpv), let bytes = TokenReference.padded(raw) else {
        throw ValidationError("--rpv: not up to 64 bytes in hex")
      }
      values.personalization = bytes
    }
    if let challenge {
      guard let raw = TokenReference.bytes(hex: challenge), !raw.isEmpty, let bytes = TokenReference.padded(raw) else {
        throw ValidationError("--challenge: not 1 to 64 bytes in hex")
      }
      values.challenge = bytes
    }
    return values
  }

  /// The reference values: --reference's, with the options' on top.
  func referenceValues(file: [UInt8]?) throws(TokenVerifierInputError) -> TokenReference {
    let given: Overrides
    do { given = try overrides() } catch { throw .reference(error.message) }
    var values = try file.map { bytes throws(TokenVerifierInputError) in try TokenReference(measureJSON: bytes) } ?? TokenReference()
    if let rim = given.rim {
      values.rim = rim
      if file == nil { values.algorithm = rim.count == 32 ? .sha256 : rim.count == 64 ? .sha512 : nil }
    }
    for index in 0..<4 where given.rems[index] != nil { values.rems[index] = given.rems[index] }
    if let personalization = given.personalization { values.personalization = personalization }
    values.challenge = given.challenge
    return values
  }

  func run() throws {
    let verdicts: [ClaimVerdict]
    do {
      let token = try CCAToken(decoding: try Self.read(self.token, limit: CCAToken.maximumSize, what: "token"))
      var values = try referenceValues(file: try reference.map { path throws(InputError) in
        try Self.read(path, limit: TokenReference.maximumFileSize, what: "reference values")
      })
      if let replayed = try replayedRIM() {
        values.rim = replayed.digest
        values.algorithm = replayed.algorithm
      }
      var verifier = TokenVerifier()
      if let cpak {
        verifier.platformKey = try TokenVerifier.platformKey(fromFile: try Self.read(cpak, limit: TokenReference.maximumFileSize, what: "CPAK"))
        verifier.platformKeySource = "the CPAK in \(cpak)"
      }
      verdicts = verifier.verify(token, against: values)
      print(json ? Self.json(token, verdicts) : ([Self.summary(of: token)] + verdicts.map(\.description)).joined(separator: "\n"))
    } catch let error as CCATokenError {
      RealmRun.report("\(token): \(error.description)")
      throw ExitStatus.unreadableEvidence
    } catch let error as LaunchLogError {
      RealmRun.report("\(measurementLog ?? ""): \(error.description)")
      throw ExitStatus.unreadableEvidence
    } catch {
      // TokenVerifierInputError or InputError: each says which file.
      RealmRun.report("\(error)")
      throw ExitStatus.unreadableEvidence
    }
    if cpak != nil {
      RealmRun.report(
        "note: on the emulated CCA host the CPAK is TF-A's published test key; a platform signature that verifies with it is no proof of a genuine, secure platform")
    }
    if verdicts.contains(where: \.rejects) { throw ExitStatus.verificationFailed }
  }

  /// The token line before the verdicts: its form and profiles.
  static func summary(of token: CCAToken) -> String {
    let realm = token.realmClaims.profile ?? "none (legacy)"
    let platform = token.platformClaims.profile ?? "none"
    return "token: \(token.form), realm profile \(realm), platform profile \(platform)"
  }

  /// The `--json` form: keys sorted, the checks in the order of the lines.
  static func json(_ token: CCAToken, _ verdicts: [ClaimVerdict]) -> String {
    struct Check: Encodable {
      var claim: String, result: String
      var expected: String? = nil, token: String? = nil, reason: String? = nil, note: String? = nil
    }
    struct Report: Encodable {
      var form: Int, realm_profile: String?, platform_profile: String?, accepted: Bool, checks: [Check]
      // Absent profiles are written as null, not left out.
      func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(form, forKey: .form)
        try c.encode(realm_profile, forKey: .realm_profile)
        try c.encode(platform_profile, forKey: .platform_profile)
        try c.encode(accepted, forKey: .accepted)
        try c.encode(checks, forKey: .checks)
      }
      enum CodingKeys: CodingKey { case form, realm_profile, platform_profile, accepted, checks }
    }
    let checks = verdicts.map { verdict in
      var check = Check(claim: verdict.claim, result: "")
      switch verdict.outcome {
      case .ok: check.result = "ok"
      case .match: check.result = "match"
      case .differs(let expected, let token): (check.result, check.expected, check.token) = ("differs", expected, token)
      case .fails(let reason): (check.result, check.reason) = ("fails", reason)
      case .notChecked(let reason): (check.result, check.reason) = ("not checked", reason)
      }
      check.note = verdict.note
      return check
    }
    let report = Report(
      form: token.form == .cmwCollection ? 907 : 399, realm_profile: token.realmClaims.profile,
      platform_profile: token.platformClaims.profile, accepted: !verdicts.contains(where: \.rejects), checks: checks)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(report)) ?? Data(), as: UTF8.self)
  }

  /// A file that cannot be read.
  struct InputError: Error, CustomStringConvertible {
    var description: String
  }

  /// The whole file at `path`, refused when larger than `limit`.
  static func read(_ path: String, limit: Int, what: String) throws(InputError) -> [UInt8] {
    let file: FileDescriptor
    do { file = try FileDescriptor.open(path, O_RDONLY | O_CLOEXEC) } catch {
      throw InputError(description: "\(what) \(path): \(error.description)")
    }
    defer { file.close() }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
      let count: Int
      do { count = try chunk.withUnsafeMutableBytes { buffer in try file.read(into: buffer) } } catch {
        throw InputError(description: "\(what) \(path): \(error)")
      }
      if count == 0 { return bytes }
      bytes += chunk[0..<count]
      guard bytes.count <= limit else { throw InputError(description: "\(what) \(path): larger than \(limit) bytes") }
    }
  }
}
