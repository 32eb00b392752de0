/* CKVM is header-only; this file gives the C target a source to compile. */
#include "ckvm.h"
#include "ckvm_syscalls.h"
