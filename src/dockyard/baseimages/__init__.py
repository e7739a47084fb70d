"""Dockyard's own offline base-image builder (`dockyard-base-images`).

Users have no internet and no registry with busybox, debian or nginx on it, so the project makes
its own base images from what the machine has: Debian's static busybox binary, and the Debian
apt mirror the machine is configured for (debootstrap, then apt-get in a chroot). Each image is
written as a `docker save` archive that `docker load -i` and `dockyard load -i` accept.

Modules, bottom up:

    tarlayer       deterministic layer tars (sorted, fixed mtimes, numeric owners)
    tree           scan, fingerprint, diff and unpack root file system trees
    workspace      scratch directories removed even on failure, never across a mount
    host           running debootstrap/unshare/chroot: argv, timeouts, logs
    cache          layers keyed by their inputs, reused when nothing changed
    dockerarchive  image config + docker-archive writer
    busybox, debian, derived   the images (busybox needs no root; the others do)
    images         catalogue and build of a selection
    main           the command line

This package is an entry point: it imports dockyard.errors and nothing else of the engine.
"""

from .images import IMAGES, BuildOptions, BuiltImage, build, select

__all__ = ["IMAGES", "BuildOptions", "BuiltImage", "build", "select"]
