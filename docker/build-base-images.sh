#!/usr/bin/env bash
# Base images from Debian packages, for machines that reach Debian's package
# mirror but no image registry. Each is a root filesystem made by mmdebstrap
# and imported with `podman import` (apt-get install mmdebstrap podman).
#
#   docker/build-base-images.sh debian   # localhost/sparrow-debian:bookworm (minbase):
#                                        #   docker/build-image.sh --base localhost/sparrow-debian:bookworm
#   docker/build-base-images.sh bird     # localhost/sparrow-bird:bookworm: BIRD 2, runs
#                                        #   bird -f -c /etc/bird/bird.conf (docker/compose.yaml)
#   docker/build-base-images.sh all
#
# MIRROR (default http://deb.debian.org/debian) and SUITE (default bookworm)
# may be set. Needs root (or mmdebstrap's unshare mode for a user).
set -euo pipefail
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}

debian() {
    mmdebstrap --variant=minbase --include=ca-certificates "$suite" - "$mirror" \
        | podman import --change 'CMD ["/bin/bash"]' - "localhost/sparrow-debian:$suite"
}

bird() {
    # No init runs in the container: bird in the foreground, its control
    # socket in /tmp (the image's /run/bird is not kept; podman exec CONTAINER
    # birdc -s /tmp/bird.ctl show protocols).
    mmdebstrap --variant=minbase --include=bird2,iproute2 "$suite" - "$mirror" \
        | podman import \
            --change 'CMD ["/usr/sbin/bird", "-f", "-c", "/etc/bird/bird.conf", "-s", "/tmp/bird.ctl"]' \
            - "localhost/sparrow-bird:$suite"
}

case "${1:-all}" in
    debian) debian ;;
    bird) bird ;;
    all) debian; bird ;;
    *) echo "usage: $0 [debian|bird|all]" >&2; exit 2 ;;
esac
