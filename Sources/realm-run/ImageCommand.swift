import ArgumentParser
import DiskImage

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

    func run() throws {
      let image = BootDiskImage(kernel: kernel, initrds: initrd, commandLine: params, title: title, rootFilesystem: rootfs)
      do throws(DiskImageError) {
        try image.write(to: output)
      } catch {
        RealmRun.report(error.description)
        throw ExitStatus.vmmError
      }
    }
  }
}
