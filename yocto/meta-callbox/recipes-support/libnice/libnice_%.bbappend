# callbox: nicesrc/nicesink, libnice's GStreamer plugin, which webrtcbin uses for ICE.
PACKAGECONFIG:append:callbox-os = " gstreamer"
