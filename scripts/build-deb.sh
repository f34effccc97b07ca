#!/usr/bin/env bash
# Builds the Debian package watchdog-evidence_*.deb with cargo-deb
# (Cargo.toml [package.metadata.deb]; installed with `cargo install
# cargo-deb --locked` when missing) from the static musl binary, runs
# lintian on it, and compares its file list (`dpkg-deb -c`) with the RPM's
# (`rpm -qlp` of scripts/build-rpm.sh's package, built when missing or
# older than the tree): the
# same files, except the paths listed below where Debian and RHEL differ.
# Prints the package's path on its last line.
#
#   scripts/build-deb.sh                 # package, lintian, compare with the RPM
#   scripts/build-deb.sh --package-only  # package only (the VM suite uses this)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full
case "${1:-}" in
    "") ;;
    --package-only) mode=package ;;
    *) echo "usage: $0 [--package-only]" >&2; exit 2 ;;
esac
target=x86_64-unknown-linux-musl
name=watchdog-evidence
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

if ! command -v cargo-deb >/dev/null; then
    cargo install cargo-deb --locked
fi
# The static binary, proved static (its output goes to stderr: the last
# line of stdout is the package's path).
scripts/build-static.sh >&2
bin=target/$target/release/watchdog

# What the RPM's %build and %install generate, generated the same way:
# man pages and completions from the binary under its packaged name, the
# units renamed (watchdog-evidence*.service) with ExecStart pointing at
# /usr/bin/watchdog-evidence.
gen=target/deb
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/completions" "$gen/units"
"$bin" generate-docs --name $name --man "$gen/man" --completions "$gen/completions" >&2
gzip -9n "$gen"/man/*.8
for unit in systemd/*.service; do
    base=$(basename "$unit" .service)
    case "$base" in
        watchdog) unit_name=$name ;;
        *) unit_name=$name-$base ;;
    esac
    sed "s|/usr/bin/watchdog |/usr/bin/$name |" "$unit" > "$gen/units/$unit_name.service"
done

WATCHDOG_GIT_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown) \
    cargo deb --no-build --no-strip --target $target --output target/debian/ >&2
deb=target/debian/${name}_${version}-1_amd64.deb
[ -f "$deb" ] || { echo "cargo deb did not write $deb" >&2; exit 1; }
if [ "$mode" = package ]; then
    echo "$deb"
    exit 0
fi

# lintian: clean except the overrides shipped in the package
# (packaging/debian/watchdog-evidence.lintian-overrides, each with its reason).
if ! command -v lintian >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian
fi
echo "lintian $deb:"
lintian --fail-on error,warning --display-level '>=info' "$deb"
echo "lintian: clean (overrides: $(grep -vc '^#\|^$' packaging/debian/$name.lintian-overrides))"

# The same files as the RPM.
# An RPM built from this very tree is reused (CI builds one just before);
# one older than the last commit, or than uncommitted changes, is not.
rpm_file=$(ls target/rpm/$name-$version-*.x86_64.rpm 2>/dev/null | head -n1 || true)
if [ -n "$rpm_file" ] && { [ "$(stat -c %Y "$rpm_file")" -lt "$(git log -1 --format=%ct)" ] \
    || [ -n "$(git status --porcelain --untracked-files=no)" ]; }; then
    rm -f target/rpm/$name-$version-*.x86_64.rpm
    rpm_file=
fi
if [ -z "$rpm_file" ]; then
    scripts/build-rpm.sh >&2
    rpm_file=$(ls target/rpm/$name-$version-*.x86_64.rpm | head -n1)
fi
# Where the distributions differ, as sed expressions applied to the RPM's
# list (RHEL's path -> Debian's path):
#   zsh: RHEL's zsh reads site-functions; Debian's packages use
#        vendor-completions (site-functions is for the local admin).
#   docs: RHEL's %doc may use a versioned directory (rpmbuild's
#        _docdir_fmt; Debian's rpmbuild does); Debian's is
#        /usr/share/doc/PACKAGE.
#   man pages: Debian policy wants them gzipped; RHEL's rpmbuild gzips
#        them (brp-compress), Debian's rpmbuild leaves them as they are.
rpm_to_deb=(
    -e 's|^/usr/share/zsh/site-functions/|/usr/share/zsh/vendor-completions/|'
    -e "s|^/usr/share/doc/$name-$version/|/usr/share/doc/$name/|"
    -e 's|^\(/usr/share/man/man[1-8]/.*\.[1-8]\)$|\1.gz|'
)
# Only in the Debian package: what Debian policy requires of every package
# (copyright, changelog.Debian.gz) and lintian's overrides.
deb_only="/usr/share/doc/$name/copyright
/usr/share/doc/$name/changelog.Debian.gz
/usr/share/lintian/overrides/$name"
# Only in the RPM: the two empty directories it owns (%dir, mode 0750);
# cargo-deb packs files only, so the deb's postinst creates them with the
# same mode and its postrm removes them on purge.
rpm_only="/var/lib/watchdog
/var/log/watchdog"

# Files (not directories) of each package, one path a line.
deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $NF}' | sed 's|^\./|/|' | sort)
rpm_files=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm_file" | awk '$1 !~ /^d/ {print $2}' \
    | sed "${rpm_to_deb[@]}" | sort)
rpm_dirs=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm_file" | awk '$1 ~ /^d/ {print $2 "/"}' \
    | sed "${rpm_to_deb[@]}" | sed 's|/$||' | sort)
fail=0
missing=$(comm -13 <(echo "$deb_files") <(echo "$rpm_files"))
extra=$(comm -23 <(echo "$deb_files") <(echo "$rpm_files") | grep -vxF "$deb_only" || true)
if [ -n "$missing" ]; then
    echo "in the RPM but not in the deb:" >&2
    echo "$missing" | sed 's/^/  /' >&2
    fail=1
fi
if [ -n "$extra" ]; then
    echo "in the deb but not in the RPM:" >&2
    echo "$extra" | sed 's/^/  /' >&2
    fail=1
fi
# The RPM's own directories are either in the deb too or made by postinst.
while read -r d; do
    [ -n "$d" ] || continue
    if ! dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|; s|/$||' | grep -qxF "$d" \
        && ! grep -qxF "$d" <<<"$rpm_only"; then
        echo "directory $d of the RPM is neither in the deb nor made by its postinst" >&2
        fail=1
    fi
done <<<"$rpm_dirs"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/watchdog/watchdog.yaml || { echo "config is not a conffile" >&2; fail=1; }
[ "$fail" = 0 ]
echo "deb and RPM: the same $(echo "$rpm_files" | wc -l) files (after mapping the zsh completion directory, the versioned doc directory and man page compression; $(echo "$deb_only" | wc -l) Debian-only files, $(echo "$rpm_only" | wc -l) directories made by postinst)"
echo "deb OK: $deb ($(stat -c %s "$deb") bytes)"
echo "$deb"
