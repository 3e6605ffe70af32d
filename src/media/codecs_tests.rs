use super::*;

/// The video part of a real LiveKit 1.13 subscriber offer (trimmed): every codec the
/// SFU knows, VP8 first, for a track published in H.264.
const OFFER: &str = "v=0\r\n\
o=- 1677540546474085378 1795347961 IN IP4 0.0.0.0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n\
a=mid:1\r\n\
a=msid:PA_USKLh4L4E4dG|TR_AMR7hYLCPk4seT TR_AMR7hYLCPk4seT\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 125 126 108 109\r\n\
a=mid:2\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:108 H264/90000\r\n\
a=msid:PA_USKLh4L4E4dG|TR_VCN7z9E8W3Lf9Z TR_VCN7z9E8W3Lf9Z\r\n\
a=sendrecv\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
a=mid:3\r\n\
a=recvonly\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
a=mid:4\r\n\
a=msid:PA_other|TR_second TR_second\r\n";

fn track(identity: &str, sid: &str, codecs: &[&str]) -> PublishedTrack {
    PublishedTrack {
        identity: identity.into(),
        sid: sid.into(),
        kind: "video".into(),
        codecs: codecs.iter().map(|c| (*c).to_owned()).collect(),
    }
}

#[test]
fn video_track_sids_come_from_msid_in_m_line_order() {
    assert_eq!(
        video_track_sids(OFFER),
        vec!["TR_VCN7z9E8W3Lf9Z".to_owned(), "TR_second".into()],
        "audio and m-lines without a track are skipped"
    );
    assert!(video_track_sids("v=0\r\nm=audio 9 RTP 111\r\na=msid:a|b b\r\n").is_empty());
}

#[test]
fn the_offered_tracks_codec_is_chosen_whatever_the_preference() {
    let all = |_: &str| true;
    let sids = video_track_sids(OFFER);
    for (mime, want) in [
        ("video/VP8", "VP8"),
        ("video/H264", "H264"),
        ("video/vp9", "VP9"),
    ] {
        let tracks = [track("alice", "TR_VCN7z9E8W3Lf9Z", &[mime])];
        for pref in [ReceiveVideoCodec::H264, ReceiveVideoCodec::Vp8] {
            let c = choose(&sids, &tracks, &all, pref);
            assert_eq!(c.codec, want, "{mime} with preference {pref:?}: {c:?}");
            assert!(c.reason.contains("alice"), "{c:?}");
        }
    }
}

#[test]
fn a_backup_codec_is_used_when_the_primary_cannot_be_decoded() {
    let no_av1 = |c: &str| c != "AV1";
    let tracks = [track("alice", "TR_a", &["video/AV1", "video/VP8"])];
    let c = choose(&["TR_a".into()], &tracks, &no_av1, ReceiveVideoCodec::H264);
    assert_eq!(c.codec, "VP8");
    let only_av1 = [track("alice", "TR_a", &["video/AV1"])];
    let c = choose(
        &["TR_a".into()],
        &only_av1,
        &no_av1,
        ReceiveVideoCodec::H264,
    );
    assert_eq!(c.codec, "H264");
    assert!(c.reason.contains("cannot decode"), "{c:?}");
}

#[test]
fn the_first_m_line_decides_and_unknown_tracks_fall_back_to_the_preference() {
    let all = |_: &str| true;
    let tracks = [
        track("alice", "TR_a", &["video/VP8"]),
        track("bob", "TR_b", &["video/H264"]),
    ];
    let c = choose(
        &["TR_a".into(), "TR_b".into()],
        &tracks,
        &all,
        ReceiveVideoCodec::H264,
    );
    assert_eq!(
        c.codec, "VP8",
        "the caller subscribed first keeps its picture"
    );
    // A track the source does not list yet is skipped for the next one.
    let c = choose(
        &["TR_x".into(), "TR_b".into()],
        &tracks,
        &all,
        ReceiveVideoCodec::Vp8,
    );
    assert_eq!(c.codec, "H264");
    let c = choose(&["TR_x".into()], &tracks, &all, ReceiveVideoCodec::Vp8);
    assert_eq!(c.codec, "VP8");
    assert!(c.reason.contains("receive_video_codec"), "{c:?}");
}

#[test]
fn this_machine_decodes_what_browsers_and_the_box_send() {
    gst::init().expect("gstreamer");
    assert!(can_decode("H264"), "avdec_h264 (gstreamer1.0-libav)");
    assert!(can_decode("VP8"), "vp8dec (gstreamer1.0-plugins-good)");
    assert!(!can_decode("NOT-A-CODEC"));
}

#[test]
fn encoding_names_are_what_webrtcsrc_expects() {
    assert_eq!(encoding_name("video/H264"), "H264");
    assert_eq!(encoding_name("video/vp8"), "VP8");
    assert_eq!(encoding_name("VP9"), "VP9");
}
