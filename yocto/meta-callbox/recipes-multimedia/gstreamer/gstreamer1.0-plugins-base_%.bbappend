# callbox: opusenc/opusdec (the Opus plugin is not built by default); alsa is on
# wherever DISTRO_FEATURES has alsa, as Poky's does.
PACKAGECONFIG:append:callbox-os = " opus"
