/*
 * wdhelper: the guest-side tools busybox lacks, for the VM test suite only
 * (never part of the product). Built on the host with `gcc -static` and
 * packed into the initramfs next to busybox and watchdog.
 *
 *   wdhelper kexec-crash KERNEL CMDLINE   kexec_file_load(KEXEC_FILE_ON_CRASH)
 *   wdhelper kmsg                         print every /dev/kmsg record, raw, until EAGAIN
 *   wdhelper segv                         die by a real NULL dereference (comm wd-segv)
 *   wdhelper hog                          touch memory until the OOM killer comes (comm wd-hog)
 *   wdhelper write FILE                   write to FILE, e.g. on a frozen fs (comm wd-writer)
 *   wdhelper kill SIG PID                 send SIG to PID (comm wd-killer)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef KEXEC_FILE_ON_CRASH
#define KEXEC_FILE_ON_CRASH 0x00000002
#endif
#ifndef KEXEC_FILE_NO_INITRAMFS
#define KEXEC_FILE_NO_INITRAMFS 0x00000004
#endif

static void name(const char *comm) { prctl(PR_SET_NAME, comm, 0, 0, 0); }

static int kexec_crash(const char *kernel, const char *cmdline) {
    int fd = open(kernel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(kernel);
        return 1;
    }
    long r = syscall(SYS_kexec_file_load, fd, -1, strlen(cmdline) + 1, cmdline,
                     KEXEC_FILE_ON_CRASH | KEXEC_FILE_NO_INITRAMFS);
    if (r != 0) {
        perror("kexec_file_load");
        return 1;
    }
    return 0;
}

/* One read() returns one record; EPIPE means records were overwritten
 * before we read them: say so and go on. EAGAIN: we have everything. */
static int kmsg(void) {
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        perror("/dev/kmsg");
        return 1;
    }
    static char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE) {
                fprintf(stderr, "wdhelper kmsg: records lost (EPIPE)\n");
                continue;
            }
            if (errno == EAGAIN)
                break;
            perror("read /dev/kmsg");
            return 1;
        }
        if (n == 0)
            break;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return 1;
    }
    return fflush(stdout) != 0;
}

static int segv(void) {
    name("wd-segv");
    /* A volatile pointer, so the compiler cannot turn the NULL load into a
     * trap instruction (that would be SIGILL, not SIGSEGV). */
    int *volatile p = NULL;
    return *p;
}

static int hog(void) {
    name("wd-hog");
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p)
            continue;
        memset(p, 0x5a, 1 << 20);
    }
    return 0;
}

static int write_file(const char *path) {
    name("wd-writer");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    const char msg[] = "written\n";
    if (write(fd, msg, sizeof msg - 1) < 0) {
        perror("write");
        return 1;
    }
    fsync(fd);
    return close(fd);
}

static int send_signal(const char *sig, const char *pid) {
    name("wd-killer");
    if (kill((pid_t)atoi(pid), atoi(sig)) != 0) {
        perror("kill");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "kexec-crash") && argc == 4)
        return kexec_crash(argv[2], argv[3]);
    if (!strcmp(cmd, "kmsg"))
        return kmsg();
    if (!strcmp(cmd, "segv"))
        return segv();
    if (!strcmp(cmd, "hog"))
        return hog();
    if (!strcmp(cmd, "write") && argc == 3)
        return write_file(argv[2]);
    if (!strcmp(cmd, "kill") && argc == 4)
        return send_signal(argv[2], argv[3]);
    fprintf(stderr, "usage: wdhelper kexec-crash KERNEL CMDLINE | kmsg | segv | hog | write FILE | kill SIG PID\n");
    return 2;
}
