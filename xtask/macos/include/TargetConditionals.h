/* What the macOS SDK's TargetConditionals.h says for a Mac (arm64), for `cargo xtask
 * macos`'s type-check, which compiles ring's C code without the SDK: macros only. */
#ifndef LANYARD_TARGET_CONDITIONALS_H
#define LANYARD_TARGET_CONDITIONALS_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_EMBEDDED 0
#define TARGET_CPU_ARM64 1
#endif
