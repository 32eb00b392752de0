/// Why boot entries could not be used.
public enum BootEntryError: Error, Equatable {
  case malformedLine(Int)
  case missingLinux
  case noEntries
  case entryNotFound
}

/// A Boot Loader Specification type-1 entry (/loader/entries/<id>.conf).
public struct BootEntry: Equatable {
  /// The file name without ".conf".
  public var id: [UInt8]
  public var title: [UInt8] = []
  public var version: [UInt8] = []
  public var sortKey: [UInt8] = []
  /// Path of the kernel on the ESP.
  public var linux: [UInt8] = []
  /// Initrd paths, in order (the key may repeat).
  public var initrds: [[UInt8]] = []
  /// Kernel command line (repeated `options` lines joined by a space).
  public var options: [UInt8] = []

  /// Parses an entry file. Lines are `key value`; blank lines and `#` comments are ignored.
  /// A line with a key but no value, or a non-printable control byte, is rejected.
  public init(id: [UInt8], text: [UInt8]) throws(BootEntryError) {
    self.id = id
    for (number, line) in try BootEntry.keyValueLines(text) {
      switch line.key {
      case ByteString.of("title"): title = line.value
      case ByteString.of("version"): version = line.value
      case ByteString.of("sort-key"): sortKey = line.value
      case ByteString.of("linux"): linux = line.value
      case ByteString.of("initrd"): initrds.append(contentsOf: line.value.split(separator: 32).map { Array($0) })
      case ByteString.of("options"): options = options.isEmpty ? line.value : options + [32] + line.value
      default: _ = number  // unknown keys (devicetree, architecture, machine-id, efi...) are ignored
      }
    }
    guard !linux.isEmpty else { throw .missingLinux }
    if title.isEmpty { title = id }
  }

  /// The kernel command line to boot this entry with: its options, then `bootArguments`
  /// (the machine's /chosen/bootargs) after a space, as the direct path and the EFI stub path pass it.
  public func commandLine(appending bootArguments: [UInt8]) -> [UInt8] {
    if bootArguments.isEmpty { return options }
    return options.isEmpty ? bootArguments : options + [32] + bootArguments
  }

  /// Splits text into (line number, key, value) triples.
  static func keyValueLines(_ text: [UInt8]) throws(BootEntryError) -> [(Int, (key: [UInt8], value: [UInt8]))] {
    var result: [(Int, (key: [UInt8], value: [UInt8]))] = []
    var number = 0
    for raw in text.split(separator: 10, omittingEmptySubsequences: false) {
      number += 1
      let line = ByteString.trimmed(Array(raw))
      if line.isEmpty || line[0] == 35 { continue }
      guard !line.contains(where: { $0 < 32 && $0 != 9 }) else { throw .malformedLine(number) }
      guard let split = line.firstIndex(where: { ByteString.isSpace($0) }) else { throw .malformedLine(number) }
      let key = Array(line[..<split])
      let value = ByteString.trimmed(Array(line[split...]))
      guard !value.isEmpty else { throw .malformedLine(number) }
      result.append((number, (key, value)))
    }
    return result
  }

  /// BLS ordering: entries with a sort-key first (ascending), then by version (descending),
  /// then by id (ascending).
  public static func ordersBefore(_ a: BootEntry, _ b: BootEntry) -> Bool {
    if a.sortKey.isEmpty != b.sortKey.isEmpty { return !a.sortKey.isEmpty }
    if a.sortKey != b.sortKey { return ByteString.less(a.sortKey, b.sortKey) }
    if a.version != b.version { return ByteString.less(b.version, a.version) }
    return ByteString.less(a.id, b.id)
  }
}

/// /loader/loader.conf settings the firmware honours.
public struct LoaderConfiguration: Equatable {
  /// The `default` entry pattern (an id, optionally with ".conf" or a trailing "*").
  public var defaultEntry: [UInt8]?

  public init() {}

  /// Parses loader.conf.
  public init(text: [UInt8]) throws(BootEntryError) {
    for (_, line) in try BootEntry.keyValueLines(text) where line.key == ByteString.of("default") {
      defaultEntry = line.value
    }
  }
}

/// Chooses the entry to boot.
public enum BootEntrySelection {
  /// `requested` (e.g. /chosen/realm-run,boot-entry) wins, then loader.conf `default`, then the
  /// first entry in BLS order.
  public static func choose(_ entries: [BootEntry], configuration: LoaderConfiguration,
                            requested: [UInt8]? = nil) throws(BootEntryError) -> BootEntry
  {
    guard !entries.isEmpty else { throw .noEntries }
    let sorted = entries.sorted(by: BootEntry.ordersBefore)
    if let requested, !requested.isEmpty {
      guard let e = sorted.first(where: { matches($0, requested) }) else { throw .entryNotFound }
      return e
    }
    if let pattern = configuration.defaultEntry, let e = sorted.first(where: { matches($0, pattern) }) {
      return e
    }
    return sorted[0]
  }

  /// True when `pattern` names the entry (its id, id + ".conf", or a prefix glob ending in "*").
  public static func matches(_ entry: BootEntry, _ pattern: [UInt8]) -> Bool {
    var p = pattern
    if ByteString.hasSuffix(p, ByteString.of(".conf")) { p.removeLast(5) }
    if p.last == 42 {
      return ByteString.hasPrefix(entry.id, Array(p.dropLast()))
    }
    return entry.id == p
  }
}
