# callbox: webrtcbin (webrtc, needs libnice), its SRTP and data-channel transports
# (srtp, sctp; dtls is on by default), kmssink (kms) and echo cancellation
# (webrtcdsp: webrtcdsp/webrtcechoprobe, webrtc-audio-processing from meta-multimedia).
PACKAGECONFIG:append:callbox-os = " kms sctp srtp webrtc webrtcdsp"
