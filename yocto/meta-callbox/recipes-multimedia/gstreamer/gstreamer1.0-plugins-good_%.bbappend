# callbox: vp8dec for callers publishing VP8 (browsers' default); not built by default.
PACKAGECONFIG:append:callbox-os = " vpx"
