import ArgumentParser
import DiskImage
import Platform

/// `realm-run image`: disk images the realm firmware can boot.
struct ImageCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "image",
    abstract: "Create bootable disk images for the realm firmware.",
    subcommands: [Create.self])

  /// `realm-run image create`: a GPT disk with a FAT32 EFI system partition and a BLS entry.
  struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "create",
      abstract: "Create a GPT disk image with a FAT32 EFI system partition holding a kernel, initrds and a boot entry.",
      discussion: """
        The EFI system partition gets the kernel as /vmlinuz and /EFI/BOOT/BOOTAA64.EFI, the initrds, \
        /loader/loader.conf and the Boot Loader Specification entry /loader/entries/realm-run.conf. \
        With --rootfs, the given file system image becomes partition 2 (Linux file system type).

        An existing output is replaced only with --force, and never when it is one of the inputs. \
        The image is written to a new file beside the output and renamed over it once complete, so \
        a failure leaves the output as it was.
        """)

    @Option(help: ArgumentHelp("The arm64 Linux Image to boot.", valueName: "path"))
    var kernel: String

    @Option(help: ArgumentHelp("An initrd to load; repeat to concatenate several, in order.", valueName: "path"))
    var initrd: [String] = []

    @Option(help: ArgumentHelp("The kernel command line stored in the boot entry.", valueName: "params"))
    var params: String = ""

    @Option(help: ArgumentHelp("The boot entry title.", valueName: "title"))
    var title: String = "Linux (realm-run)"

    @Option(help: ArgumentHelp("A root file system image to append as the second partition.", valueName: "path"))
    var rootfs: String?

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("The disk image to write.", valueName: "path"))
    var output: String

    @Flag(help: "Replace the output if it exists.")
    var force = false

    func run() throws {
      let image = BootDiskImage(kernel: kernel, initrds: initrd, commandLine: params, title: title, rootFilesystem: rootfs)
      var progress = CopyProgress()
      do throws(DiskImageError) {
        try image.write(to: output, replacing: force) { progress.update(copied: $0, total: $1) }
      } catch {
        progress.endLine()
        RealmRun.report(error.description)
        throw ExitStatus.vmmError
      }
    }
  }
}

/// The rootfs copy's progress as one line on stderr, updated in place ("copying rootfs: 512/2048
/// MiB"), for copies long enough to wait for, and only on a terminal: a log or a pipe gets nothing.
struct CopyProgress {
  /// Smaller copies end before a progress line would be worth reading.
  static let threshold: UInt64 = 256 << 20
  let isTerminal: Bool
  let emit: (String) -> Void
  private var shownMiB: UInt64?
  private var done = false

  init(isTerminal: Bool = FileDescriptor.standardError.isTerminal, emit: @escaping (String) -> Void = RealmRun.writeStandardError) {
    self.isTerminal = isTerminal
    self.emit = emit
  }

  mutating func update(copied: UInt64, total: UInt64) {
    guard isTerminal, total >= Self.threshold, !done else { return }
    let mib = copied >> 20
    if mib != shownMiB { emit("\rcopying rootfs: \(mib)/\(total >> 20) MiB") }
    shownMiB = mib
    if copied >= total {
      emit("\n")
      done = true
    }
  }

  /// Ends a progress line cut short by an error, so that the error gets a line of its own.
  mutating func endLine() {
    guard shownMiB != nil, !done else { return }
    emit("\n")
    done = true
  }
}
