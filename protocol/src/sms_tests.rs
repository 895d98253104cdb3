//! Tests of `sms`.

use super::*;
use proptest::prelude::*;

fn post(text: &str) -> Request {
    match read(text) {
        Reading::Post(r) => r,
        other => panic!("{text:?} read as {other:?}"),
    }
}

#[test]
fn needs_and_offers_in_plain_words() {
    let r = post("NEED water 4 people 12 Mill Lane");
    assert_eq!(r.kind, Kind::Need);
    assert_eq!(r.title, "water 4 people");
    assert_eq!(r.place, "12 Mill Lane");
    assert_eq!(r.category, Category::Water);
    let r = post("OFFER generator Elm St");
    assert_eq!(
        (r.kind, r.title.as_str(), r.place.as_str()),
        (Kind::Offer, "generator", "Elm St")
    );
    assert_eq!(r.category, Category::Power);
    let r = post("NECESITO agua para 3 personas, Calle Mayor 5");
    assert_eq!(
        (r.lang, r.title.as_str(), r.place.as_str()),
        (Lang::Es, "agua para 3 personas", "Calle Mayor 5")
    );
    assert_eq!(r.category, Category::Water);
    let r = post("ofrezco mantas en la iglesia");
    assert_eq!(
        (r.kind, r.place.as_str(), r.category),
        (Kind::Offer, "la iglesia", Category::Shelter)
    );
    let r = post("necesito insulina calle Peña 3");
    assert_eq!(
        (r.title.as_str(), r.place.as_str(), r.category),
        ("insulina", "calle Peña 3", Category::Medical)
    );
}

#[test]
fn tolerant_of_case_accents_and_lead_words() {
    assert_eq!(post("  we need: sandbags at the school ").title, "sandbags");
    assert_eq!(post("need sandbags at the school").place, "the school");
    assert_eq!(post("Necesitámos comida").kind, Kind::Need);
    assert_eq!(post("Need, insulin").title, "insulin");
    assert_eq!(post("need boat").category, Category::Rescue);
    assert_eq!(post("need a hug").category, Category::Other);
    assert_eq!(post("NEED WATER 12 MILL LANE").place, "12 MILL LANE");
}

#[test]
fn short_words_answer_welfare_and_stop() {
    assert_eq!(read("OK"), Reading::Safe(Lang::En));
    assert_eq!(read(" ok. "), Reading::Safe(Lang::En));
    assert_eq!(read("Estoy bien!"), Reading::Safe(Lang::Es));
    assert_eq!(read("HELP"), Reading::Help(Lang::En, String::new()));
    assert_eq!(
        read("ayuda, no tengo luz"),
        Reading::Help(Lang::Es, "no tengo luz".into())
    );
    assert_eq!(read("STOP"), Reading::Stop);
    assert_eq!(read("Baja"), Reading::Stop);
}

#[test]
fn what_cannot_be_read_is_unclear_with_a_suggestion() {
    assert_eq!(read(""), Reading::Unclear(Unclear::Empty, None));
    assert_eq!(read(" \n\t"), Reading::Unclear(Unclear::Empty, None));
    assert_eq!(
        read("NEED"),
        Reading::Unclear(Unclear::NothingAfterKeyword, None)
    );
    assert_eq!(
        read("need ,,, !"),
        Reading::Unclear(Unclear::NothingAfterKeyword, None)
    );
    match read("water please 12 Mill Lane") {
        Reading::Unclear(Unclear::NoKeyword, Some(s)) => {
            assert_eq!(
                (s.kind, s.category, s.place.as_str()),
                (Kind::Need, Category::Water, "12 Mill Lane")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read(&"x".repeat(2000)),
        Reading::Unclear(Unclear::TooLong, None)
    ));
    // Control characters never reach a title.
    let r = post("need wa\u{1b}[2Jter\u{202e} now");
    assert!(
        r.title.chars().all(|c| !c.is_control() && c != '\u{202e}'),
        "{:?}",
        r.title
    );
}

#[test]
fn segments_are_counted_by_encoding() {
    assert_eq!(encoding("hello"), Encoding::Gsm7(5));
    assert_eq!(encoding("a€"), Encoding::Gsm7(3));
    assert_eq!(encoding("Peña"), Encoding::Gsm7(4));
    assert_eq!(encoding("Jesús"), Encoding::Ucs2(5));
    assert_eq!(encoding("😀"), Encoding::Ucs2(2));
    assert_eq!(Encoding::Gsm7(160).segments(), 1);
    assert_eq!(Encoding::Gsm7(161).segments(), 2);
    assert_eq!(Encoding::Ucs2(70).segments(), 1);
    assert_eq!(Encoding::Ucs2(71).segments(), 2);
    // An accent forces UCS-2 at 70: taken off rather than cut.
    let long = format!("Recibido: {} para Calle Jesús 5", "agua ".repeat(12));
    let one = one_segment(&long);
    assert!(
        fits(&one) && matches!(encoding(&one), Encoding::Gsm7(_)),
        "{one}"
    );
    assert!(one.contains("Calle Jesus 5"), "{one}");
}

#[test]
fn replies_are_one_segment() {
    let r = post("NEED water 4 people 12 Mill Lane");
    let got = reply_got(&r, "3f2a9c", "Elm St hub");
    assert_eq!(
        got,
        "Got it: need water 4 people for 12 Mill Lane, ref 3f2a9c, Elm St hub."
    );
    let long = post(&format!("NEED {} , 12 Mill Lane", "very ".repeat(40)));
    let got = reply_got(&long, "3f2a9c", "Elm St hub");
    assert!(fits(&got) && got.contains("ref 3f2a9c"), "{got}");
    let es = post("NECESITO agua para 3 personas, Calle Mayor 5");
    assert!(fits(&reply_got(&es, "3f2a9c", "Elm St hub")));
    let ch = reply_change(
        Lang::En,
        Kind::Need,
        Change::Claimed,
        "Sam",
        "Oak Rd hub",
        "water",
        "3f2a9c",
    );
    assert_eq!(ch, "Sam from Oak Rd hub is bringing water, ref 3f2a9c.");
}

#[test]
fn numbers_in_odd_formats() {
    assert_eq!(
        normalise_number("+34 600-111 222").as_deref(),
        Some("+34600111222")
    );
    assert_eq!(
        normalise_number("0034600111222").as_deref(),
        Some("+34600111222")
    );
    assert_eq!(normalise_number("(555) 0101").as_deref(), Some("5550101"));
    assert_eq!(normalise_number("abc"), None);
    assert!(same_number("+34 600 111 222", "600111222"));
    assert!(!same_number("+34 600 111 222", "+34 600 111 223"));
}

proptest! {
    #[test]
    fn reading_never_panics_and_titles_are_valid(s in "\\PC{0,300}") {
        if let Reading::Post(r) | Reading::Unclear(_, Some(r)) = read(&s) {
            prop_assert!(!r.title.is_empty() && r.title.chars().count() <= MAX_TITLE);
            prop_assert!(r.place.chars().count() <= MAX_LABEL);
            prop_assert!(text::check("t", &r.title, MAX_TITLE, Required::Yes, Lines::One).is_ok());
            prop_assert!(text::check("p", &r.place, MAX_LABEL, Required::No, Lines::One).is_ok());
        }
    }

    #[test]
    fn one_segment_always_fits(s in "\\PC{0,400}") {
        let one = one_segment(&s);
        prop_assert!(fits(&one), "{:?}", one);
        if fits(&s) {
            prop_assert_eq!(one, s);
        }
    }

    #[test]
    fn replies_fit_whatever_was_texted(title in "\\PC{1,120}", place in "\\PC{0,120}", es in any::<bool>()) {
        let r = Request { kind: Kind::Need, lang: if es { Lang::Es } else { Lang::En },
            title, category: Category::Other, place };
        prop_assert!(fits(&reply_got(&r, "3f2a9c", "Elm St hub")));
        prop_assert!(fits(&reply_change(r.lang, r.kind, Change::Fulfilled, "Sam", "Oak", &r.title, "3f2a9c")));
    }
}
