# callbox: x264enc, the software H.264 encoder (Raspberry Pi 5 and x86 have no V4L2
# encoder). a52dec and mpeg2dec are not needed, and mpeg2dec would need one more
# commercial licence flag.
PACKAGECONFIG:append:callbox-os = " x264"
PACKAGECONFIG:remove:callbox-os = "a52dec mpeg2dec"
