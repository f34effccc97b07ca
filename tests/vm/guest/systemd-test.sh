#!/bin/bash
# The systemd boot's test (docs/vm-tests.md, "systemd"): runs inside a
# Debian 12 root file system booted with its own systemd as PID 1, started
# by wd-vmtest.service (tests/vm/rootfs.sh) after multi-user.target. The
# payload disk /dev/vdb, unpacked into /wdtest, holds this script, the
# package under test (watchdog-evidence_*.deb), wdhelper, the kernel's
# modules the scenarios load, and an ext4 image for the hung task.
#
# Same protocol as the initramfs suite (tests/vm/guest/init): markers on
# ttyS0 (@@WD-INIT@@, @@WD-BEGIN name@@, @@WD-END name rc=N@@,
# @@WD-DONE@@), and at the end a tar of /out on ttyS1, from which alone the
# driver reads results. Each scenario writes /out/NAME.out (lines
# `wd-fact KEY=VALUE` are facts the driver asserts on) and its exit status.
# A check that fails prints "FAIL: …" and makes the scenario's status 1.

P=/wdtest
CON=/dev/ttyS0
UNIT=watchdog-evidence.service
UDP=watchdog-evidence-udplogger.service
BIN=/usr/bin/watchdog-evidence
DROPIN=/etc/systemd/system/$UNIT.d
HUNG_MSGID=67778d9a27f04f93914ef2f5371a4709
T=/sys/kernel/tracing
mkdir -p /out
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$P

param() {
    for w in $(cat /proc/cmdline); do
        case $w in "$1="*) echo "${w#*=}" ;; esac
    done
}

fact() { echo "wd-fact $1=$2"; }
fail() { echo "FAIL: $*"; RC=1; }
ok() { echo "ok: $*"; }

# Waits up to $1 seconds (wall clock: under TCG one journalctl takes a
# good part of a second) for the command after it to succeed.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $end ]; do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.2
    done
    "$@" > /dev/null 2>&1
}

journal_has() { journalctl -u "$1" -o cat --no-pager | grep -qF -- "$2"; }

# The unit's messages from this scenario on, for the driver and for people.
journal_save() { journalctl -u "$1" -o short-monotonic --no-pager > "/out/$2.journal" 2>&1; }

tracefs() { grep -q " $T tracefs " /proc/mounts || mount -t tracefs nodev $T; }

# --- scenarios ------------------------------------------------------------

# The kernel's modules for this boot (only the initramfs's are loaded),
# then the package: dpkg -i under the real systemd runs its maintainer
# scripts (deb-systemd-helper, daemon-reload, the catalog trigger).
scn_systemd_install() {
    mkdir -p /lib/modules
    cp -a $P/modules/lib/modules/* /lib/modules/
    depmod -a "$(uname -r)"
    fact systemd_version "$(systemctl --version | head -n 1 | cut -d' ' -f2)"
    dpkg -i $P/watchdog-evidence_*.deb > /out/systemd_install.dpkg 2>&1 || fail "dpkg -i exited $?"
    cat /out/systemd_install.dpkg
    dpkg-query -W -f='${Package} ${Version} ${Status}\n' watchdog-evidence
    dpkg -L watchdog-evidence > /out/systemd_install.files
    fact conffiles "$(dpkg-query -W -f='${Conffiles}' watchdog-evidence | awk '{print $1}' | tr '\n' ' ')"
    for u in $UNIT $UDP; do
        fact "enabled_${u%%.service}" "$(systemctl is-enabled $u 2>&1)"
        fact "active_${u%%.service}" "$(systemctl is-active $u 2>&1)"
    done
    # Debian's systemd rebuilds the catalog by a dpkg trigger on
    # /usr/lib/systemd/catalog: journalctl -x knows the hung-task entry.
    if journalctl --dump-catalog $HUNG_MSGID 2> /dev/null | grep -q "A task was blocked"; then
        fact catalog yes
    else
        fact catalog no
        fail "the journal catalog does not know $HUNG_MSGID"
    fi
    $BIN --version
    for d in /var/lib/watchdog /var/log/watchdog; do
        fact "dir_$(basename $(dirname $d))" "$(stat -c '%a %U' $d 2>&1)"
    done
}

# systemd-analyze security of both shipped units, as installed.
scn_systemd_security() {
    for u in $UNIT $UDP; do
        systemd-analyze security --no-pager $u > /out/security.${u%%.service}.txt 2>&1
        fact "exposure_${u%%.service}" "$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p' /out/security.${u%%.service}.txt)"
    done
}

# Type=notify: `systemctl start` returns once READY=1 arrived, and only
# then is the unit active. WatchdogSec=10s for the test (the unit has
# 60 s): the pings (WATCHDOG=1 every 5 s) must move WatchdogTimestamp.
scn_systemd_notify() {
    tracefs
    mkdir -p $DROPIN
    printf '[Service]\nWatchdogSec=10s\n' > $DROPIN/50-vmtest-watchdog.conf
    systemctl daemon-reload
    t0=$(cut -d' ' -f1 /proc/uptime)
    timeout 120 systemctl start $UNIT || fail "systemctl start exited $?"
    fact start_secs "$(echo "$(cut -d' ' -f1 /proc/uptime) $t0" | awk '{printf "%.1f", $1 - $2}')"
    systemctl show -p Type,NotifyAccess,ActiveState,SubState,StatusText,MainPID,WatchdogUSec $UNIT
    fact type "$(systemctl show -P Type $UNIT)"
    fact active "$(systemctl is-active $UNIT)"
    fact status_text "$(systemctl show -P StatusText $UNIT)"
    fact main_pid "$(systemctl show -P MainPID $UNIT)"
    w1=$(systemctl show -P WatchdogTimestampMonotonic $UNIT)
    sleep 12
    w2=$(systemctl show -P WatchdogTimestampMonotonic $UNIT)
    fact watchdog_ts_1 "$w1"
    fact watchdog_ts_2 "$w2"
    fact active_after_pings "$(systemctl is-active $UNIT)"
    # What the sandbox let it set up: its trace instances and kprobe.
    ls $T/instances/ | tr '\n' ' ' | sed 's/^/instances: /'
    echo
    fact instances "$(ls $T/instances/ | tr '\n' ' ')"
    fact kprobes "$(cut -d' ' -f1 $T/kprobe_events | tr '\n' ' ')"
    journal_save $UNIT systemd_notify
}

# SIGHUP through `systemctl reload`: an added rule is read; a broken file
# is refused and the running configuration kept.
scn_systemd_reload() {
    cfg=/etc/watchdog/watchdog.yaml
    cp $cfg /tmp/watchdog.yaml.orig
    pid=$(systemctl show -P MainPID $UNIT)
    systemctl reload $UNIT || fail "systemctl reload exited $?"
    wait_for 20 journal_has $UNIT "reloaded (" || fail "no reload message"
    n=$(journalctl -u $UNIT -o cat | sed -n 's/.*reloaded (\([0-9]*\) rules).*/\1/p' | tail -n 1)
    fact rules_before "$n"
    # One more rule, inserted at the top of run.rules.
    awk '{print} /^  rules:$/ && !done {print "    - name: vmtest-reload"; print "      kind: oom_kill"; print "      actions: [log]"; done=1}' \
        /tmp/watchdog.yaml.orig > $cfg
    $BIN config check $cfg || fail "the edited configuration does not check"
    systemctl reload $UNIT
    wait_for 20 journal_has $UNIT "reloaded ($((n + 1)) rules)" || fail "the added rule was not read"
    fact rules_after "$(journalctl -u $UNIT -o cat | sed -n 's/.*reloaded (\([0-9]*\) rules).*/\1/p' | tail -n 1)"
    # Broken: a value out of range (the compile step refuses it).
    sed -i 's/^  oom_score_adj: -1000$/  oom_score_adj: -5000/' $cfg
    $BIN config check $cfg > /out/systemd_reload.broken 2>&1 && fail "config check accepted the broken file"
    cat /out/systemd_reload.broken
    systemctl reload $UNIT
    wait_for 20 journal_has $UNIT "keeping the running configuration" || fail "no refusal of the broken file"
    journalctl -u $UNIT -o cat | grep -F "keeping the running configuration" | tail -n 1
    sleep 1
    fact active_after_broken "$(systemctl is-active $UNIT)"
    fact same_pid "$([ "$(systemctl show -P MainPID $UNIT)" = "$pid" ] && echo yes || echo no)"
    fact status_text "$(systemctl show -P StatusText $UNIT)"
    cp /tmp/watchdog.yaml.orig $cfg
    journal_save $UNIT systemd_reload
}

# A hung task (frozen ext4 on a ramdisk, a writer in D state): the daemon,
# inside its sandbox, fires SysRq-T, saves the ftrace snapshot, writes the
# incident bundle and a journal entry with the hung-task MESSAGE_ID.
scn_systemd_hung_task() {
    modprobe brd rd_nr=1 rd_size=16384 || { fail "modprobe brd"; return; }
    modprobe crc32c_generic
    modprobe ext4
    dd if=$P/ext4.img of=/dev/ram0 bs=1M 2> /dev/null
    mkdir -p /mnt/wdfreeze
    mount -t ext4 /dev/ram0 /mnt/wdfreeze || { fail "mount"; return; }
    echo 2 > /proc/sys/kernel/hung_task_timeout_secs
    fsfreeze --freeze /mnt/wdfreeze || { fail "fsfreeze"; return; }
    wdhelper write /mnt/wdfreeze/blocked &
    pid=$!
    fact pid $pid
    fact comm wd-writer
    # journalctl's JSON has spaces around its colons.
    wait_for 30 sh -c "journalctl MESSAGE_ID=$HUNG_MSGID -o json | grep -q '\"WATCHDOG_PID\" *: *\"$pid\"'" \
        || fail "no journal entry with MESSAGE_ID=$HUNG_MSGID for pid $pid"
    journalctl MESSAGE_ID=$HUNG_MSGID -o json > /out/systemd_hung_task.journal.json
    journalctl MESSAGE_ID=$HUNG_MSGID -x --no-pager | tail -n 12
    # The bundle copies the blocked task while it is still blocked (its
    # kernel stack only where the sandbox lets it: see the driver).
    wait_for 30 sh -c "ls /var/lib/watchdog/evidence/incidents/*/proc/$pid/status" || fail "no copy of $pid in a bundle"
    fsfreeze --unfreeze /mnt/wdfreeze
    wait $pid
    echo "writer exit=$?"
    umount /mnt/wdfreeze
    wdhelper kmsg > /out/systemd_hung_task.kmsg
    fact active_after "$(systemctl is-active $UNIT)"
    journal_save $UNIT systemd_hung_task
}

# What the hung task left, once `systemctl stop` has completed the open
# incident (its bundle is closed then): the event log, the files under
# /var/lib/watchdog, and each bundle's manifest, kmsg.txt and stacks.
save_hung_task_evidence() {
    cp /var/log/watchdog/events.jsonl /out/systemd_hung_task.run.jsonl
    for f in $(find /var/lib/watchdog -type f); do
        echo "$(wc -c < $f) $f" >> /out/systemd_hung_task.evidence
    done
    i=0
    for b in $(ls -d /var/lib/watchdog/evidence/incidents/*/ 2> /dev/null); do
        cp $b/manifest.json /out/systemd_hung_task.incident$i.manifest.json
        cp $b/kmsg.txt /out/systemd_hung_task.incident$i.kmsg.txt
        for st in $(ls $b/proc/*/stack 2> /dev/null); do
            cp $st /out/systemd_hung_task.incident$i.stack.$(basename $(dirname $st))
        done
        i=$((i + 1))
    done
}

# `systemctl stop`: the daemon removes its trace instances and kprobe.
scn_systemd_stop() {
    fact instances_before "$(ls $T/instances/ | tr '\n' ' ')"
    fact kprobes_before "$(cut -d' ' -f1 $T/kprobe_events | tr '\n' ' ')"
    systemctl stop $UNIT || fail "systemctl stop exited $?"
    fact result "$(systemctl show -P Result $UNIT)"
    fact exit_status "$(systemctl show -P ExecMainStatus $UNIT)"
    fact instances_after "$(ls $T/instances/ | tr '\n' ' ')"
    fact kprobes_after "$(cut -d' ' -f1 $T/kprobe_events | tr '\n' ' ')"
    save_hung_task_evidence
    rm -f $DROPIN/50-vmtest-watchdog.conf
    systemctl daemon-reload
    journal_save $UNIT systemd_stop
}

net_up() {
    ip link show eth0 > /dev/null 2>&1 && return 0
    modprobe e1000 || return 1
    ip link set lo up
    ip link set eth0 up || return 1
    ip addr add 10.0.2.15/24 dev eth0 || return 1
    sleep 1
}

# An `exec` action that connects to a TCP listener on the guest's own
# non-loopback address, and metrics_file in node_exporter's textfile
# directory: both fail under the shipped unit, both work with the shipped
# drop-in (/usr/share/watchdog-evidence/exec-and-metrics.conf).
EXEC_PORT=7777
TEXTFILE=/var/lib/node_exporter/textfile_collector
exec_round() {
    local tag=$1
    : > /tmp/listener.$tag
    nc -l 10.0.2.15 $EXEC_PORT > /tmp/listener.$tag 2>&1 &
    local nc=$!
    sleep 0.5
    : > /var/log/watchdog/events.jsonl
    timeout 120 systemctl restart $UNIT || fail "$tag: restart exited $?"
    sleep 2
    echo w > /proc/sysrq-trigger
    wait_for 30 grep -q '"rule":"vmtest-exec"' /var/log/watchdog/events.jsonl || fail "$tag: no action event of rule vmtest-exec"
    grep '"rule":"vmtest-exec"' /var/log/watchdog/events.jsonl | head -n 1 > /out/systemd_exec.$tag.action.json
    cat /out/systemd_exec.$tag.action.json
    fact "${tag}_action_ok" "$(sed -n 's/.*"ok":\([a-z]*\).*/\1/p' /out/systemd_exec.$tag.action.json)"
    sleep 1
    kill $nc 2> /dev/null
    wait $nc 2> /dev/null
    fact "${tag}_listener" "$(head -c 200 /tmp/listener.$tag | tr -d '\n')"
    # The metrics file is written within a few seconds of the start.
    wait_for 15 test -s $TEXTFILE/watchdog.prom
    fact "${tag}_metrics" "$( [ -s $TEXTFILE/watchdog.prom ] && grep -c '^watchdog_' $TEXTFILE/watchdog.prom || echo none)"
    journalctl -u $UNIT -o cat --no-pager | grep -i -m 3 "metrics"
    systemctl stop $UNIT
    rm -f $TEXTFILE/watchdog.prom
}

scn_systemd_exec() {
    net_up || { fail "network"; return; }
    ip -br addr
    mkdir -p $TEXTFILE
    cfg=/etc/watchdog/watchdog.yaml
    cp $cfg /tmp/watchdog.yaml.orig
    # On SysRq w (Show Blocked State), send a line over TCP with bash's
    # /dev/tcp; the event is in $WATCHDOG_EVENT.
    awk -v port=$EXEC_PORT '{print} /^  rules:$/ && !done {
        print "    - name: vmtest-exec"
        print "      kind: sysrq"
        print "      where: {command: Show Blocked State}"
        print "      incident: false"
        print "      actions: [{exec: {command: [/bin/bash, -c, \"echo wd-exec-reached >/dev/tcp/10.0.2.15/" port "\"], timeout_secs: 10}}]"
        done=1}' /tmp/watchdog.yaml.orig \
        | sed "0,/^  metrics_file: \"\"/s||  metrics_file: $TEXTFILE/watchdog.prom|" > $cfg
    grep -n "metrics_file:" $cfg
    $BIN config check $cfg || fail "the exec configuration does not check"
    exec_round strict
    cp /usr/share/watchdog-evidence/exec-and-metrics.conf $DROPIN/
    systemctl daemon-reload
    exec_round dropin
    systemd-analyze security --no-pager $UNIT > /out/security.dropin.txt 2>&1
    fact exposure_dropin "$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p' /out/security.dropin.txt)"
    rm -f $DROPIN/exec-and-metrics.conf
    systemctl daemon-reload
    cp /tmp/watchdog.yaml.orig $cfg
    journal_save $UNIT systemd_exec
}

# The udplogger unit (DynamicUser, LogsDirectory) receives this guest's
# own netconsole: sent to the host (10.0.2.2), which sends every datagram
# back through QEMU's user network (hostfwd to 10.0.2.15:6666).
scn_systemd_udplogger() {
    net_up || { fail "network"; return; }
    systemctl start $UDP || fail "systemctl start $UDP exited $?"
    sleep 1
    fact udp_active "$(systemctl is-active $UDP)"
    ss -uanp | grep 6666
    port=$(param wd.ncport)
    # The boot line has quiet (console level 4): consoles, netconsole
    # included, would get nothing below KERN_ERR, and lines written to
    # /dev/kmsg are KERN_WARNING.
    dmesg -n 8
    modprobe netconsole "netconsole=+6665@10.0.2.15/eth0,$port@10.0.2.2/" || { fail "modprobe netconsole"; return; }
    for i in $(seq 1 20); do
        echo "wd-systemd-netconsole: line $i of 20" > /dev/kmsg
    done
    wait_for 60 sh -c "grep -h 'wd-systemd-netconsole: line 20 of 20' /var/log/udplogger/*.log" \
        || fail "line 20 did not reach /var/log/udplogger"
    systemctl stop $UDP
    ls -la /var/log/udplogger/ /var/log/private/udplogger/ 2>&1
    fact udp_owner "uid $(stat -c %u /var/log/private/udplogger 2>&1)"
    cat /var/log/udplogger/*.log | grep -F "wd-systemd-netconsole" > /out/systemd_udplogger.lines
    fact udp_files "$(ls /var/log/udplogger/ | tr '\n' ' ')"
    journal_save $UDP systemd_udplogger
}

# --- main -------------------------------------------------------------------

echo "@@WD-INIT uptime=$(cut -d' ' -f1 /proc/uptime)@@" > $CON
stty -F /dev/ttyS1 raw -echo 2> /dev/null
systemd-analyze time > /out/boot-time.txt 2>&1
for s in systemd-install systemd-security systemd-notify systemd-reload systemd-hung-task \
         systemd-stop systemd-exec systemd-udplogger; do
    name=$(echo "$s" | tr - _)
    echo "@@WD-BEGIN $s@@" > $CON
    echo "wd-scenario: begin $s" > /dev/kmsg
    RC=0
    scn_$name > /out/$name.out 2>&1
    rc=$RC
    echo "wd-scenario: end $s rc=$rc" > /dev/kmsg
    echo $rc > /out/$name.rc
    sed 's/^/  | /' /out/$name.out > $CON
    echo "@@WD-END $s rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)@@" > $CON
done
# The end of the boot's journal, for people (the whole would take long to
# drain through the emulated UART).
journalctl -b --no-pager -o short-monotonic 2>&1 | tail -n 2000 > /out/journal.txt
sync
# -f: GNU tar refuses to write an archive to a terminal on its stdout.
tar -c -f /dev/ttyS1 -C /out .
echo "@@WD-DONE@@" > $CON
systemctl poweroff --no-block
