#!/usr/bin/env bash
# Qt's X11 platform plugin needs a few system libraries that minimal Linux images lack.
# Install them when missing and we are allowed to (root with apt); otherwise say what to install.
set -u
[ "$(uname -s)" = "Linux" ] || exit 0
need=()
for lib in libxcb-cursor.so.0 libxkbcommon-x11.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 \
           libxcb-image.so.0 libxcb-render-util.so.0 libEGL.so.1 libfontconfig.so.1; do
  ldconfig -p | grep -q "$lib" || need+=("$lib")
done
[ ${#need[@]} -eq 0 ] && exit 0
pkgs="libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libegl1 libfontconfig1"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Qt's X11 libraries: $pkgs"
  (apt-get update -qq && apt-get install -y -qq $pkgs) >/dev/null || echo "Could not install $pkgs"
else
  echo "Qt may need these system packages for its window: $pkgs (missing: ${need[*]})"
fi
exit 0
