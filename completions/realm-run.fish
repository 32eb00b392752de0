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
            __realm-run_parse_subcommand 0 'm/mem=' 'c/cpus=' 'kernel=' 'initrd=' 'params=' 'firmware=' 'disk=+' 'realm' 'no-realm' 'measurement-algo=' 'realm-pv=' 'cca-abi=' 'console=' 'timeout=' 'console-log=' 'dump-dtb=' 'log-level=' 'version' 'h/help'
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
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'host-info' -d 'Show what this host\'s KVM offers: IPA size, CCA support and its UAPI generation, guest_memfd.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_positional "realm-run" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" m mem' -s 'm' -l 'mem' -d 'Guest RAM: MiB, or a number with K, M, G or T.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" c cpus' -s 'c' -l 'cpus' -d 'Number of vCPUs.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" kernel' -l 'kernel' -d 'Boot this Linux arm64 Image directly instead of firmware.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" initrd' -l 'initrd' -d 'Initial ramdisk for --kernel.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" params' -l 'params' -d 'Kernel command line, added after realm-run\'s console= (with firmware: passed in /chosen/bootargs).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" firmware' -l 'firmware' -d 'Firmware to boot instead of the bundled realm-fw.bin (loaded at the start of RAM, x0 = DTB).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run"' -l 'disk' -d 'A disk image for a virtio-blk device; \',ro\' makes it read-only, \',direct\' bypasses the host page cache. Repeatable.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" realm' -l 'realm' -d 'Run the guest as an Arm CCA Realm (--no-realm: a normal VM).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" no-realm' -l 'no-realm' -d 'Run the guest as an Arm CCA Realm (--no-realm: a normal VM).'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" measurement-algo' -l 'measurement-algo' -d 'Realm measurement hash algorithm: sha256 or sha512.' -rfka 'sha256 sha512'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" realm-pv' -l 'realm-pv' -d 'Realm Personalization Value: up to 64 bytes of text.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" cca-abi' -l 'cca-abi' -d 'KVM CCA host UAPI series to speak instead of probing: v5, v8, v9, v10, v12, v13, v14, v15, rmi-253.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" console' -l 'console' -d 'The guest console: serial (8250 UART, ttyS0) or virtio (virtio-console, hvc0).' -rfka 'serial virtio'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" timeout' -l 'timeout' -d 'Stop the guest after this many seconds (exit status 124).' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" console-log' -l 'console-log' -d 'Also write the guest\'s console output to this file.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" dump-dtb' -l 'dump-dtb' -d 'Write the device tree given to the guest to this file.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" log-level' -l 'log-level' -d 'Log level on stderr.' -rfka 'trace debug info notice warning error critical'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run host-info" device' -l 'device' -d 'The KVM device.' -rfka ''
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run host-info" version' -l 'version' -d 'Show the version.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run host-info" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'realm-run' -n '__realm-run_should_offer_completions_for_flags_or_options "realm-run help" version' -l 'version' -d 'Show the version.'
