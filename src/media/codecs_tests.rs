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
fn video_tracks_come_from_msid_with_their_m_line_index() {
    assert_eq!(
        video_tracks_by_mline(OFFER),
        vec![(1, "TR_VCN7z9E8W3Lf9Z".to_owned()), (3, "TR_second".into())],
        "audio and m-lines without a track are skipped; the index counts every m-line"
    );
    assert!(video_tracks_by_mline("v=0\r\nm=audio 9 RTP 111\r\na=msid:a|b b\r\n").is_empty());
}

fn sids(sdp: &str) -> Vec<String> {
    video_tracks_by_mline(sdp)
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

/// LiveKit 1.13's video m-line as offered to a subscriber (formats, RTX with `apt`,
/// RED/ULPFEC, feedback), for a group call: two tracks, each to be narrowed.
const FULL_VIDEO: &str = "m=video 9 UDP/TLS/RTP/SAVPF 96 97 125 126 108 109 63 116\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:125 H264/90000\r\n\
a=fmtp:125 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:126 rtx/90000\r\n\
a=fmtp:126 apt=125\r\n\
a=rtpmap:108 H264/90000\r\n\
a=rtcp-fb:108 nack pli\r\n\
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:109 rtx/90000\r\n\
a=fmtp:109 apt=108\r\n\
a=rtpmap:63 red/90000\r\n\
a=rtpmap:116 ulpfec/90000\r\n";

fn group_offer() -> gst_webrtc::gst_sdp::SDPMessage {
    gst::init().expect("gstreamer");
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n\
         {FULL_VIDEO}a=msid:PA_a|TR_alice TR_alice\r\n\
         {FULL_VIDEO}a=msid:PA_b|TR_bob TR_bob\r\n"
    );
    gst_webrtc::gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).expect("an SDP offer")
}

#[test]
fn each_m_line_is_narrowed_to_its_own_codec() {
    let mut sdp = group_offer();
    assert!(keep_only_codec(sdp.media_mut(1).unwrap(), "VP8"));
    assert!(keep_only_codec(sdp.media_mut(2).unwrap(), "H264"));
    let formats =
        |i: u32| -> Vec<String> { sdp.media(i).unwrap().formats().map(str::to_owned).collect() };
    assert_eq!(formats(0), ["111"], "audio untouched");
    assert_eq!(
        formats(1),
        ["96", "97", "63", "116"],
        "VP8 and its RTX, RED, ULPFEC"
    );
    assert_eq!(
        formats(2),
        ["108", "109", "63", "116"],
        "H.264 in packetization mode 1 (not 0) and its RTX, RED, ULPFEC"
    );
    let text = sdp.as_text().unwrap();
    let bob_media = sdp.media(2).unwrap();
    let attrs: Vec<String> = bob_media
        .attributes()
        .map(|a| format!("{}:{}", a.key(), a.value().unwrap_or_default()))
        .collect();
    assert!(
        !attrs.iter().any(|a| a.starts_with("rtpmap:96")
            || a.starts_with("rtcp-fb:96")
            || a.starts_with("fmtp:97")),
        "VP8's lines are gone from bob's m-line: {attrs:?}"
    );
    assert!(attrs.contains(&"fmtp:109 apt=108".to_owned()), "{attrs:?}");
    assert!(
        attrs.iter().any(|a| a.starts_with("msid:")),
        "the track stays named"
    );
    assert_eq!(sids(&text), ["TR_alice", "TR_bob"]);
}

#[test]
fn an_m_line_without_the_codec_is_left_alone() {
    let mut sdp = group_offer();
    let before = sdp.as_text().unwrap();
    assert!(!keep_only_codec(sdp.media_mut(1).unwrap(), "AV1"));
    assert_eq!(sdp.as_text().unwrap(), before);
}

#[test]
fn the_offered_tracks_codec_is_chosen_whatever_the_preference() {
    let all = |_: &str| true;
    let sids = sids(OFFER);
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

/// What webrtcbin 1.22 answers to [`group_offer`] once narrowed: one codec per
/// m-line, H.264 without `profile-level-id`.
fn group_answer(first: &str, second: &str) -> gst_webrtc::gst_sdp::SDPMessage {
    gst::init().expect("gstreamer");
    let section = |codec: &str, mid: u32| match codec {
        "VP8" => format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:{mid}\r\na=rtpmap:96 VP8/90000\r\n\
             a=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=recvonly\r\n"
        ),
        _ => format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 108 109\r\na=mid:{mid}\r\na=rtpmap:108 H264/90000\r\n\
             a=rtcp-fb:108 nack pli\r\na=fmtp:108 packetization-mode=1;level-asymmetry-allowed=1\r\n\
             a=rtpmap:109 rtx/90000\r\na=fmtp:109 apt=108\r\na=recvonly\r\n"
        ),
    };
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 OPUS/48000/2\r\n{}{}",
        section(first, 1),
        section(second, 2)
    );
    gst_webrtc::gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).expect("an answer")
}

fn attributes(m: &gst_webrtc::gst_sdp::SDPMediaRef) -> Vec<String> {
    m.attributes()
        .map(|a| format!("{}:{}", a.key(), a.value().unwrap_or_default()))
        .collect()
}

#[test]
fn offered_formats_know_encodings_repairs_and_h264_modes() {
    let offered = offered_formats(&group_offer());
    let pts: Vec<&str> = offered.iter().map(|f| f.pt.as_str()).collect();
    assert_eq!(pts, ["96", "97", "125", "126", "108", "109", "63", "116"]);
    let f108 = offered.iter().find(|f| f.pt == "108").unwrap();
    assert_eq!((f108.encoding.as_str(), f108.mode1), ("H264", true));
    let f125 = offered.iter().find(|f| f.pt == "125").unwrap();
    assert!(!f125.mode1);
    let f126 = offered.iter().find(|f| f.pt == "126").unwrap();
    assert_eq!(
        (f126.encoding.as_str(), f126.apt.as_deref()),
        ("RTX", Some("125"))
    );
}

/// Whichever codec the first m-line was answered with, it ends up listing VP8 and
/// H.264 (mode 1, with the offer's profile) and their RTX, so the SFU can forward
/// either codec on any m-line later; the other m-lines stay as answered.
#[test]
fn the_answers_first_video_m_line_lists_every_codec_the_box_decodes() {
    let offered = offered_formats(&group_offer());
    let all = |_: &str| true;
    for (first, added) in [("H264", ["96", "97"]), ("VP8", ["108", "109"])] {
        let second = if first == "VP8" { "H264" } else { "VP8" };
        let mut sdp = group_answer(first, second);
        let before_second = attributes(sdp.media(2).unwrap());
        assert_eq!(complete_first_video_mline(&mut sdp, &offered, &all), added);
        let m = sdp.media(1).unwrap();
        let formats: Vec<&str> = m.formats().collect();
        assert_eq!(formats.len(), 4, "{first} first: {formats:?}");
        let attrs = attributes(m);
        for want in [
            "rtpmap:96 VP8/90000",
            "fmtp:97 apt=96",
            "rtpmap:108 H264/90000",
            "fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "fmtp:109 apt=108",
        ] {
            assert!(
                attrs.iter().any(|a| a == want),
                "{first} first: {want} in {attrs:?}"
            );
        }
        assert!(
            !formats.contains(&"125") && !formats.contains(&"63"),
            "no H.264 mode 0, no RED: {formats:?}"
        );
        assert_eq!(attributes(sdp.media(2).unwrap()), before_second);
        assert!(
            complete_first_video_mline(&mut sdp, &offered, &all).is_empty(),
            "nothing more to add"
        );
    }
}

#[test]
fn only_codecs_the_box_decodes_are_added() {
    let offered = offered_formats(&group_offer());
    let mut sdp = group_answer("H264", "H264");
    let no_vp8 = |c: &str| c != "VP8";
    assert!(complete_first_video_mline(&mut sdp, &offered, &no_vp8).is_empty());
}
