#!/usr/bin/env bash
# Build the sparrowd container image from already-built binaries (no image
# registry needed). From the repository root:
#
#   docker/build-image.sh                    # scratch + target/release binaries and their libraries
#   docker/build-image.sh --static           # scratch + a static glibc build (second cargo build)
#   docker/build-image.sh --base sparrow-debian:bookworm   # on an imported Debian rootfs
#
# Options:
#   --bin DIR      directory holding sparrowd and sparrowctl (default: target/release,
#                  or the static build's directory with --static)
#   --static       first build static binaries:
#                  RUSTFLAGS='-C target-feature=+crt-static' cargo build --release
#                    --target x86_64-unknown-linux-gnu --bin sparrowd --bin sparrowctl
#   --base IMAGE   final stage's base (default scratch); not scratch: no libraries
#                  or /etc/passwd are added (the base has them)
#   --tag NAME     image name (default localhost/sparrow:latest)
#   --config FILE  the image's /etc/sparrow/sparrow.yaml (default docker/sparrow.yaml)
#   --engine CMD   podman (default), buildah bud or docker
#   --context DIR  only write the build context to DIR (must not exist), build nothing
# Extra arguments after `--` go to the engine's build command.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" static=0 base=scratch tag=localhost/sparrow:latest config=docker/sparrow.yaml
engine=podman context_only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --static) static=1; shift ;;
        --base) base=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --engine) engine=$2; shift 2 ;;
        --context) context_only=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "build-image.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done

target=x86_64-unknown-linux-gnu
if [ "$static" = 1 ]; then
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --target "$target" --bin sparrowd --bin sparrowctl
    bin=${bin:-${CARGO_TARGET_DIR:-target}/$target/release}
fi
bin=${bin:-${CARGO_TARGET_DIR:-target}/release}
for b in sparrowd sparrowctl; do
    [ -x "$bin/$b" ] || { echo "build-image.sh: $bin/$b missing (cargo build --release --bins)" >&2; exit 1; }
done

if [ -n "$context_only" ]; then
    mkdir "$context_only"
    ctx=$context_only
else
    ctx=$(mktemp -d /tmp/sparrow-image.XXXXXX)
    trap 'rm -rf "$ctx"' EXIT
fi
root=$ctx/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc/sparrow" "$root/tmp" "$ctx/state"
chmod 1777 "$root/tmp"
for b in sparrowd sparrowctl; do
    # Without debug info: the image needs no symbols (a tenth of the size).
    if command -v objcopy >/dev/null; then
        objcopy --strip-debug "$bin/$b" "$root/usr/local/bin/$b"
    else
        cp "$bin/$b" "$root/usr/local/bin/$b"
    fi
    chmod 0755 "$root/usr/local/bin/$b"
done
install -m 0644 "$config" "$root/etc/sparrow/sparrow.yaml"

if [ "$base" = scratch ]; then
    # A dynamic binary gets its shared libraries (and the loader) at the paths
    # the build host has them; a static one gets none.
    for b in sparrowd sparrowctl; do
        ldd "$bin/$b" 2>/dev/null | grep -o '/[^ ]*' || true
    done | sort -u | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    printf 'root:x:0:0:root:/:/nonexistent\nsparrow:x:10001:10001:sparrowd:/var/lib/sparrow:/nonexistent\n' \
        > "$root/etc/passwd"
    printf 'root:x:0:\nsparrow:x:10001:\n' > "$root/etc/group"
fi

if [ -n "$context_only" ]; then
    echo "context written to $ctx"
    exit 0
fi
# --format docker: OCI images drop HEALTHCHECK. --layers=false: no cache
# images (the context is new each time), so no unnamed `pieces` image is left.
build=(podman build --format docker --layers=false)
case "$engine" in
    podman) ;;
    buildah) build=(buildah bud --format docker --layers=false) ;;
    docker) build=(docker build) ;;
    *) build=($engine) ;;
esac
"${build[@]}" -f docker/Dockerfile --build-arg "BASE=$base" -t "$tag" "$@" "$ctx"
