function __realm-run_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __realm-run_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __realm-run_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __realm-run_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __realm-run_parse_tokens -S
    set -l unparsed_tokens (__realm-run_tokens -pc)
    switch $unparsed_tokens[1]
    case 'realm-run'
        __realm-run_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'run'
            __realm-run_parse_subcommand 0 'm/mem=' 'c/cpus=' 'kernel=' 'initrd=' 'params=' 'firmware=' 'disk=+' 'share=+' 'net=+' 'realm' 'no-realm' 'measurement-algo=' 'realm-pv=' 'cca-abi=' 'console=' 'rng' 'no-rng' 'ioeventfd' 'no-ioeventfd' 'irqfd' 'no-irqfd' 'sve-vl=' 'pmu' 'pmu-counters=' 'boot-entry=' 'boot-mode=' 'timeout=' 'until=' 'fail-on=' 'console-log=' 'dump-dtb=' 'log-level=' 'print-rim' 'measurement-log=' 'version' 'h/help'
        case 'image'
            __realm-run_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'create'
                __realm-run_parse_subcommand 0 'kernel=' 'initrd=+' 'params=' 'title=' 'rootfs=' 'o/output=' 'force' 'version' 'h/help'
            end
        case 'measure'
            __realm-run_parse_subcommand 0 'm/mem=' 'c/cpus=' 'kernel=' 'initrd=' 'params=' 'firmware=' 'disk=+' 'share=+' 'net=+' 'realm' 'no-realm' 'measurement-algo=' 'realm-pv=' 'cca-abi=' 'console=' 'rng' 'no-rng' 'ioeventfd' 'no-ioeventfd' 'irqfd' 'no-irqfd' 'sve-vl=' 'pmu' 'pmu-counters=' 'boot-entry=' 'boot-mode=' 'rules=' 'lpa2' 'no-lpa2' 'breakpoints=' 'watchpoints=' 'from-host' 'json' 'corim=' 'corim-layout=' 'measurement-log=' 'force' 'version' 'h/help'
        case 'verify'
            __realm-run_parse_subcommand 1 'reference=' 'rim=' 'rem=+' 'realm-pv=' 'rpv=' 'challenge=' 'cpak=' 'measurement-log=' 'image=+' 'json' 'version' 'h/help'
        case 'host-info'
            __realm-run_parse_subcommand 0 'device=' 'version' 'h/help'
        case 'help'
            __realm-run_parse_subcommand -r 1 'version'
        end
    end
end

function __realm-run_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __realm-run_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __realm-run_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __realm-run_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__realm-run_tokens -p)
    if test -z "$(__realm-run_tokens -t)"
        set -l index (count (__realm-run_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'realm-run' -f
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'run' -d 'Run a machine (the default when no subcommand is given).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'image' -d 'Create bootable disk images for the realm firmware.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'measure' -d 'Print the Realm Initial Measurement (RIM) and the reference values a machine would get, without running it.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'verify' -d 'Check a Realm\'s CCA attestation token against reference values.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'host-info' -d 'Show what this host\'s KVM offers: IPA size, CCA support and its UAPI generation, guest_memfd.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" m mem' -s 'm' -l 'mem' -d 'Guest RAM: MiB, or a number with K, M, G or T.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" c cpus' -s 'c' -l 'cpus' -d 'Number of vCPUs.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" kernel' -l 'kernel' -d 'Boot this Linux arm64 Image directly instead of firmware.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" initrd' -l 'initrd' -d 'Initial ramdisk for --kernel.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" params' -l 'params' -d 'Kernel command line, added after realm-run\'s console= (with firmware: passed in /chosen/bootargs).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" firmware' -l 'firmware' -d 'Firmware to boot instead of the bundled realm-fw.bin (loaded at the start of RAM, x0 = DTB).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run"' -l 'disk' -d 'A disk image for a virtio-blk device; \',ro\' makes it read-only, \',direct\' bypasses the host page cache. Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run"' -l 'share' -d 'Share a host directory over virtio-9p: the guest mounts it with \'mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR\' (tag: share0, share1, ... by default); \',ro\' refuses every change. The guest cannot reach outside DIR. Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run"' -l 'net' -d 'A virtio-net device. tap=NAME: on a host tap device (opened, or created when realm-run runs as root, and brought up). user: user-mode networking (libslirp, no root): NAT to the host\'s network, the guest gets 10.0.2.15 by DHCP, 10.0.2.2 is the host\'s loopback, 10.0.2.3 its DNS; each hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT listens on the host and connects to the guest. mac= sets the guest\'s address (default: 52:54:00 and three bytes from the backend and the option\'s position). Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" realm' -l 'realm' -d 'Run the guest as an Arm CCA Realm (--no-realm: a normal VM).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" no-realm' -l 'no-realm' -d 'Run the guest as an Arm CCA Realm (--no-realm: a normal VM).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" measurement-algo' -l 'measurement-algo' -d 'Realm measurement hash algorithm: sha256 or sha512.' -rfka 'sha256 sha512'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" realm-pv' -l 'realm-pv' -d 'Realm Personalization Value: up to 64 bytes of text.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" cca-abi' -l 'cca-abi' -d 'KVM CCA host UAPI series to speak instead of probing: v5, v8, v9, v10, v12, v13, v14, v15, rmi-253.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" console' -l 'console' -d 'The guest console: serial (8250 UART, ttyS0) or virtio (virtio-console, hvc0).' -rfka 'serial virtio'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" rng' -l 'rng' -d 'Give the guest a virtio-rng device fed by the host\'s getrandom (default: on for a Realm, off with --no-realm).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" no-rng' -l 'no-rng' -d 'Give the guest a virtio-rng device fed by the host\'s getrandom (default: on for a Realm, off with --no-realm).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" ioeventfd' -l 'ioeventfd' -d 'Let KVM catch the virtio queue notifications (KVM_IOEVENTFD) instead of exiting to realm-run (--no-ioeventfd: every notification exits, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" no-ioeventfd' -l 'no-ioeventfd' -d 'Let KVM catch the virtio queue notifications (KVM_IOEVENTFD) instead of exiting to realm-run (--no-ioeventfd: every notification exits, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" irqfd' -l 'irqfd' -d 'Let KVM raise the virtio devices\' interrupts from eventfds (KVM_IRQFD, with a resample eventfd for the level-triggered INTx lines) instead of an ioctl per change (--no-irqfd: KVM_IRQ_LINE, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" no-irqfd' -l 'no-irqfd' -d 'Let KVM raise the virtio devices\' interrupts from eventfds (KVM_IRQFD, with a resample eventfd for the level-triggered INTx lines) instead of an ioctl per change (--no-irqfd: KVM_IRQ_LINE, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" sve-vl' -l 'sve-vl' -d 'Give the guest SVE with vectors of up to this many bits (a multiple of 128). Off without it: a Realm\'s vector length is measured.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" pmu' -l 'pmu' -d 'Give the guest a PMUv3 (performance counters).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" pmu-counters' -l 'pmu-counters' -d 'The PMU\'s number of event counters (PMCR_EL0.N; implies --pmu). A Realm\'s count is measured.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" boot-entry' -l 'boot-entry' -d 'Boot this Boot Loader Specification entry (its file name without .conf) instead of the default; passed to the firmware in /chosen.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" boot-mode' -l 'boot-mode' -d 'How the bundled firmware boots the disk: auto (the ESP\'s BLS entries by the direct path, else \\EFI\\BOOT\\BOOTAA64.EFI under UEFI), efi (BOOTAA64.EFI under UEFI: shim, GRUB, systemd-boot) or bls (the BLS entries only); passed in /chosen.' -rfka 'auto efi bls'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" timeout' -l 'timeout' -d 'Stop the guest after this many seconds (exit status 124).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" until' -l 'until' -d 'End the run when a console line matches this extended regular expression (grep -E): the guest is stopped and realm-run exits 0.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" fail-on' -l 'fail-on' -d 'End the run when a console line matches this extended regular expression, with exit status 5 and the line on stderr (e.g. \'Kernel panic|Oops\').' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" console-log' -l 'console-log' -d 'Also write the guest\'s console output to this file.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" dump-dtb' -l 'dump-dtb' -d 'Write the device tree given to the guest to this file (replaced; never one of the machine\'s files).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" log-level' -l 'log-level' -d 'Log level on stderr.' -rfka 'trace debug info notice warning error critical'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" print-rim' -l 'print-rim' -d 'Print the Realm\'s predicted initial measurement (RIM) on stderr at launch, with the rules of this host\'s CCA generation (see \'realm-run measure\').'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" measurement-log' -l 'measurement-log' -d 'Write the Realm\'s launch measurement log to this file: every command the RMM measured, in order, as a TCG event log a verifier replays to the RIM (see \'realm-run measure\').' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run image" -eq 1' -fa 'create' -d 'Create a GPT disk image with a FAT32 EFI system partition holding a kernel, initrds and a boot entry.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" kernel' -l 'kernel' -d 'The arm64 Linux Image to boot.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create"' -l 'initrd' -d 'An initrd to load; repeat to concatenate several, in order.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" params' -l 'params' -d 'The kernel command line stored in the boot entry.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" title' -l 'title' -d 'The boot entry title.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" rootfs' -l 'rootfs' -d 'A root file system image to append as the second partition.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" o output' -s 'o' -l 'output' -d 'The disk image to write.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" force' -l 'force' -d 'Replace the output if it exists.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run image create" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" m mem' -s 'm' -l 'mem' -d 'Guest RAM: MiB, or a number with K, M, G or T.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" c cpus' -s 'c' -l 'cpus' -d 'Number of vCPUs.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" kernel' -l 'kernel' -d 'Boot this Linux arm64 Image directly instead of firmware.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" initrd' -l 'initrd' -d 'Initial ramdisk for --kernel.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" params' -l 'params' -d 'Kernel command line, added after realm-run\'s console= (with firmware: passed in /chosen/bootargs).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" firmware' -l 'firmware' -d 'Firmware to boot instead of the bundled realm-fw.bin (loaded at the start of RAM, x0 = DTB).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure"' -l 'disk' -d 'A disk image for a virtio-blk device; \',ro\' makes it read-only, \',direct\' bypasses the host page cache. Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure"' -l 'share' -d 'Share a host directory over virtio-9p: the guest mounts it with \'mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR\' (tag: share0, share1, ... by default); \',ro\' refuses every change. The guest cannot reach outside DIR. Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure"' -l 'net' -d 'A virtio-net device. tap=NAME: on a host tap device (opened, or created when realm-run runs as root, and brought up). user: user-mode networking (libslirp, no root): NAT to the host\'s network, the guest gets 10.0.2.15 by DHCP, 10.0.2.2 is the host\'s loopback, 10.0.2.3 its DNS; each hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT listens on the host and connects to the guest. mac= sets the guest\'s address (default: 52:54:00 and three bytes from the backend and the option\'s position). Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" realm' -l 'realm' -d 'Run the guest as an Arm CCA Realm (--no-realm: a normal VM).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" no-realm' -l 'no-realm' -d 'Run the guest as an Arm CCA Realm (--no-realm: a normal VM).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" measurement-algo' -l 'measurement-algo' -d 'Realm measurement hash algorithm: sha256 or sha512.' -rfka 'sha256 sha512'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" realm-pv' -l 'realm-pv' -d 'Realm Personalization Value: up to 64 bytes of text.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" cca-abi' -l 'cca-abi' -d 'KVM CCA host UAPI series to speak instead of probing: v5, v8, v9, v10, v12, v13, v14, v15, rmi-253.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" console' -l 'console' -d 'The guest console: serial (8250 UART, ttyS0) or virtio (virtio-console, hvc0).' -rfka 'serial virtio'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" rng' -l 'rng' -d 'Give the guest a virtio-rng device fed by the host\'s getrandom (default: on for a Realm, off with --no-realm).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" no-rng' -l 'no-rng' -d 'Give the guest a virtio-rng device fed by the host\'s getrandom (default: on for a Realm, off with --no-realm).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" ioeventfd' -l 'ioeventfd' -d 'Let KVM catch the virtio queue notifications (KVM_IOEVENTFD) instead of exiting to realm-run (--no-ioeventfd: every notification exits, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" no-ioeventfd' -l 'no-ioeventfd' -d 'Let KVM catch the virtio queue notifications (KVM_IOEVENTFD) instead of exiting to realm-run (--no-ioeventfd: every notification exits, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" irqfd' -l 'irqfd' -d 'Let KVM raise the virtio devices\' interrupts from eventfds (KVM_IRQFD, with a resample eventfd for the level-triggered INTx lines) instead of an ioctl per change (--no-irqfd: KVM_IRQ_LINE, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" no-irqfd' -l 'no-irqfd' -d 'Let KVM raise the virtio devices\' interrupts from eventfds (KVM_IRQFD, with a resample eventfd for the level-triggered INTx lines) instead of an ioctl per change (--no-irqfd: KVM_IRQ_LINE, to measure the difference).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" sve-vl' -l 'sve-vl' -d 'Give the guest SVE with vectors of up to this many bits (a multiple of 128). Off without it: a Realm\'s vector length is measured.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" pmu' -l 'pmu' -d 'Give the guest a PMUv3 (performance counters).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" pmu-counters' -l 'pmu-counters' -d 'The PMU\'s number of event counters (PMCR_EL0.N; implies --pmu). A Realm\'s count is measured.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" boot-entry' -l 'boot-entry' -d 'Boot this Boot Loader Specification entry (its file name without .conf) instead of the default; passed to the firmware in /chosen.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" boot-mode' -l 'boot-mode' -d 'How the bundled firmware boots the disk: auto (the ESP\'s BLS entries by the direct path, else \\EFI\\BOOT\\BOOTAA64.EFI under UEFI), efi (BOOTAA64.EFI under UEFI: shim, GRUB, systemd-boot) or bls (the BLS entries only); passed in /chosen.' -rfka 'auto efi bls'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" rules' -l 'rules' -d 'Measurement rules: rmm-1.0 (TF-RMM 0.8.0, series v12 and older kernels) or rmm-2.0 (TF-RMM 0.9.0, series v13+). Default: from --cca-abi, else rmm-2.0.' -rfka 'rmm-1.0 rmm-2.0'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" lpa2' -l 'lpa2' -d 'Whether the host kernel sets the Realm\'s LPA2 flag (default: yes for rmm-2.0 hosts, as the emulated v13 host does; no for v12 and older).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" no-lpa2' -l 'no-lpa2' -d 'Whether the host kernel sets the Realm\'s LPA2 flag (default: yes for rmm-2.0 hosts, as the emulated v13 host does; no for v12 and older).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" breakpoints' -l 'breakpoints' -d 'num_bps: the raw ID_AA64DFR0_EL1.BRPs field the host gives a Realm, one less than the number of breakpoints (default 5).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" watchpoints' -l 'watchpoints' -d 'num_wps: the raw ID_AA64DFR0_EL1.WRPs field the host gives a Realm, one less than the number of watchpoints (default 3).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" from-host' -l 'from-host' -d 'Read the rules, LPA2 and the breakpoint and watchpoint counts from this host\'s KVM (an arm64 CCA host).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" json' -l 'json' -d 'Print JSON: algorithm, rules, rim, the measured realm parameters, rems and rpv.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" corim' -l 'corim' -d 'Write the reference values (RIM, known REMs, RPV) as an unsigned CoRIM to this file.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" corim-layout' -l 'corim-layout' -d 'The CoRIM layout: current (Veraison v0.0.2605 and later) or legacy (v0.0.2604 and older).' -rfka 'current legacy'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" measurement-log' -l 'measurement-log' -d 'Write the launch measurement log (a TCG event log of every measured command) to this file.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" force' -l 'force' -d 'Replace the --corim and --measurement-log files if they exist.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run measure" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" reference' -l 'reference' -d 'Reference values: the output of \'realm-run measure --json\'.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" rim' -l 'rim' -d 'The expected RIM, in hex (sets the hash algorithm by its length unless --reference gives one).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify"' -l 'rem' -d 'An expected REM: its index (0-3) and value in hex, e.g. 1=ab12.... Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" realm-pv' -l 'realm-pv' -d 'The expected Realm Personalization Value as \'run\' takes it: up to 64 bytes of text.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" rpv' -l 'rpv' -d 'The expected Realm Personalization Value in hex, up to 64 bytes (zero-padded).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" challenge' -l 'challenge' -d 'The challenge the Realm asked with, in hex, up to 64 bytes (zero-padded to 64 as the guest\'s driver does).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" cpak' -l 'cpak' -d 'The CCA Platform Attestation Key to check the platform signature with: PEM, JWK, DER or the raw point.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" measurement-log' -l 'measurement-log' -d 'A launch measurement log to replay for the expected RIM (with --image).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify"' -l 'image' -d 'An image the launch log names (kernel, initrd, firmware, DTB), found by its digest. Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" json' -l 'json' -d 'Print one JSON object (the token\'s form and profiles, \'accepted\', and \'checks\': claim, result, and expected, token or reason) instead of lines.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run host-info" device' -l 'device' -d 'The KVM device.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run host-info" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run host-info" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run help" version' -l 'version' -d 'Show the version.'
