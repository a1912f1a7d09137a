//! Docker-style generated container names: `adjective_surname`, e.g. `focused_lovelace`.
//!
//! Like Docker's `namesgenerator`, a name pairs an adjective with the surname of a notable
//! scientist or engineer, never produces `boring_wozniak` ("Steve Wozniak is not boring"), and on
//! retries appends a random digit (`focused_lovelace7`). [`generate_unique`] tries a plain name
//! first, then names with a digit, then longer random suffixes, until `exists` accepts one.

use rand::Rng;

/// Adjectives, as in Docker's list of friendly moods.
const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

/// Surnames of notable scientists, mathematicians and engineers.
const SURNAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "antonelli",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "backus",
    "banach",
    "banzai",
    "bardeen",
    "bartik",
    "bassi",
    "beaver",
    "bell",
    "benz",
    "bhabha",
    "bhaskara",
    "black",
    "blackburn",
    "blackwell",
    "bohr",
    "boole",
    "booth",
    "borg",
    "bose",
    "bouman",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "buck",
    "burnell",
    "cannon",
    "carson",
    "cartwright",
    "carver",
    "cerf",
    "chandrasekhar",
    "chaplygin",
    "chatelet",
    "chatterjee",
    "chaum",
    "chebyshev",
    "clarke",
    "cohen",
    "colden",
    "cori",
    "cray",
    "curie",
    "curran",
    "darwin",
    "davinci",
    "dewdney",
    "dhawan",
    "diffie",
    "dijkstra",
    "dirac",
    "driscoll",
    "dubinsky",
    "easley",
    "edison",
    "einstein",
    "elbakyan",
    "elgamal",
    "elion",
    "ellis",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "feistel",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "gagarin",
    "galileo",
    "galois",
    "ganguly",
    "gates",
    "gauss",
    "germain",
    "goldberg",
    "goldstine",
    "goldwasser",
    "golick",
    "goodall",
    "gould",
    "greider",
    "grothendieck",
    "haibt",
    "hamilton",
    "hamming",
    "haslett",
    "hawking",
    "heisenberg",
    "hellman",
    "hermann",
    "herschel",
    "hertz",
    "heyrovsky",
    "hodgkin",
    "hofstadter",
    "hollerith",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "ishizaka",
    "jackson",
    "jang",
    "jemison",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kahn",
    "kalam",
    "kapitsa",
    "kare",
    "keldysh",
    "keller",
    "kepler",
    "khayyam",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lederberg",
    "lehmann",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "margulis",
    "matsumoto",
    "maxwell",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclaren",
    "mclean",
    "mcnulty",
    "meitner",
    "mendel",
    "mendeleev",
    "meninsky",
    "merkle",
    "mestorf",
    "minsky",
    "mirzakhani",
    "montalcini",
    "moore",
    "morse",
    "moser",
    "murdock",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "proskuriakova",
    "ptolemy",
    "raman",
    "ramanujan",
    "rhodes",
    "ride",
    "riemann",
    "ritchie",
    "robinson",
    "roentgen",
    "rosalind",
    "rubin",
    "saha",
    "sammet",
    "sanderson",
    "satoshi",
    "shamir",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "shtern",
    "sinoussi",
    "snyder",
    "solomon",
    "spence",
    "stonebraker",
    "sutherland",
    "swanson",
    "swartz",
    "swirles",
    "taussig",
    "tesla",
    "tharp",
    "thompson",
    "torvalds",
    "tu",
    "turing",
    "varahamihira",
    "vaughan",
    "villani",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wilbur",
    "wiles",
    "williams",
    "williamson",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "wu",
    "yalow",
    "yonath",
    "zhukovsky",
];

/// Attempts with Docker's scheme (a plain name, then names with one digit) before longer
/// suffixes are used.
const DOCKER_ATTEMPTS: usize = 6;

/// A random `adjective_surname` name.
pub fn generate(rng: &mut impl Rng) -> String {
    generate_from(|n| rng.gen_range(0..n))
}

/// Builds a name from an index source (`pick(n)` returns an index below `n`), skipping
/// `boring_wozniak`.
fn generate_from(mut pick: impl FnMut(usize) -> usize) -> String {
    loop {
        let adjective = ADJECTIVES[pick(ADJECTIVES.len()) % ADJECTIVES.len()];
        let surname = SURNAMES[pick(SURNAMES.len()) % SURNAMES.len()];
        if adjective == "boring" && surname == "wozniak" {
            continue;
        }
        return format!("{adjective}_{surname}");
    }
}

/// A generated name for which `exists` returns false.
///
/// Like Docker's daemon, the first attempt is a plain name and the next attempts append one
/// random digit; if those are all taken, suffixes of growing length are tried (Docker would fall
/// back to the container ID; the caller has none here).
pub fn generate_unique(rng: &mut impl Rng, exists: impl Fn(&str) -> bool) -> String {
    for attempt in 0..DOCKER_ATTEMPTS {
        let mut name = generate(rng);
        if attempt > 0 {
            name.push(char::from(b'0' + rng.gen_range(0..10u8)));
        }
        if !exists(&name) {
            return name;
        }
    }
    let mut digits = 2;
    loop {
        for _ in 0..DOCKER_ATTEMPTS {
            let mut name = generate(rng);
            for _ in 0..digits {
                name.push(char::from(b'0' + rng.gen_range(0..10u8)));
            }
            if !exists(&name) {
                return name;
            }
        }
        digits += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::cell::{Cell, RefCell};
    use std::collections::HashSet;

    fn shape_ok(name: &str, max_digits: usize) -> bool {
        let Some((adj, rest)) = name.split_once('_') else {
            return false;
        };
        let surname = rest.trim_end_matches(|c: char| c.is_ascii_digit());
        let digits = rest.len() - surname.len();
        !adj.is_empty()
            && adj.bytes().all(|b| b.is_ascii_lowercase())
            && !surname.is_empty()
            && surname.bytes().all(|b| b.is_ascii_lowercase())
            && digits <= max_digits
    }

    #[test]
    fn lists_are_sized_clean_and_unique() {
        assert!(ADJECTIVES.len() >= 100, "{}", ADJECTIVES.len());
        assert!(SURNAMES.len() >= 240, "{}", SURNAMES.len());
        for list in [ADJECTIVES, SURNAMES] {
            let set: HashSet<&str> = list.iter().copied().collect();
            assert_eq!(set.len(), list.len(), "duplicates in list");
            assert!(list
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, list, "list is not sorted");
        }
    }

    #[test]
    fn generated_names_have_docker_shape() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let name = generate(&mut rng);
            assert!(shape_ok(&name, 0), "{name}");
            assert_ne!(name, "boring_wozniak");
            seen.insert(name);
        }
        assert!(seen.len() > 1500, "names repeat too often: {}", seen.len());
    }

    #[test]
    fn boring_wozniak_is_skipped() {
        let boring = ADJECTIVES.iter().position(|a| *a == "boring");
        let wozniak = SURNAMES.iter().position(|s| *s == "wozniak");
        let (Some(boring), Some(wozniak)) = (boring, wozniak) else {
            panic!("lists must contain boring and wozniak");
        };
        // First pair drawn is boring_wozniak, the next is boring_turing.
        let turing = SURNAMES.iter().position(|s| *s == "turing").unwrap_or(0);
        let script = [boring, wozniak, boring, turing];
        let mut i = 0;
        let name = generate_from(|_| {
            let v = script[i % script.len()];
            i += 1;
            v
        });
        assert_eq!(name, "boring_turing");
        assert_eq!(i, 4);
    }

    #[test]
    fn unique_returns_a_plain_name_when_free() {
        let mut rng = StdRng::seed_from_u64(1);
        let calls = Cell::new(0);
        let name = generate_unique(&mut rng, |_| {
            calls.set(calls.get() + 1);
            false
        });
        assert_eq!(calls.get(), 1);
        assert!(shape_ok(&name, 0), "{name}");
    }

    #[test]
    fn unique_retries_with_a_digit() {
        for rejected in 1..DOCKER_ATTEMPTS {
            let mut rng = StdRng::seed_from_u64(rejected as u64);
            let asked = RefCell::new(Vec::new());
            let name = generate_unique(&mut rng, |n| {
                asked.borrow_mut().push(n.to_string());
                asked.borrow().len() <= rejected
            });
            let asked = asked.into_inner();
            assert_eq!(asked.len(), rejected + 1);
            assert_eq!(asked.last(), Some(&name));
            assert!(shape_ok(&asked[0], 0), "{}", asked[0]);
            for n in &asked[1..] {
                assert!(shape_ok(n, 1), "{n}");
                assert!(n.ends_with(|c: char| c.is_ascii_digit()), "{n}");
            }
        }
    }

    #[test]
    fn unique_uses_longer_suffixes_when_digits_run_out() {
        let mut rng = StdRng::seed_from_u64(3);
        // Reject everything with fewer than two trailing digits.
        let name = generate_unique(&mut rng, |n| {
            let surname = n.trim_end_matches(|c: char| c.is_ascii_digit());
            n.len() - surname.len() < 2
        });
        assert!(shape_ok(&name, 2), "{name}");
        assert!(name.ends_with(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn unique_avoids_taken_names() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut taken = HashSet::new();
        for _ in 0..500 {
            let name = generate_unique(&mut rng, |n| taken.contains(n));
            assert!(!taken.contains(&name));
            taken.insert(name);
        }
    }
}
