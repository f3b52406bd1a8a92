//! Deterministic generator of a synthetic, national-size "Annuaire de l'éducation" CSV.
//!
//! The output mimics the real open-data export: UTF-8 with a BOM, `;`-separated,
//! fields quoted only when needed, and a subset of the real column names.
//! It is used by the import benchmark (66,000 établissements, the national size)
//! and by tests (small sizes).
//!
//! Geography is real (101 départements, 30 académies, 18 régions); communes,
//! établissements, UAIs and SIRETs are synthetic but well-formed:
//! UAIs carry a valid check letter, SIRETs pass the Luhn check.
//!
//! The same options always produce byte-identical output: randomness comes from
//! a small SplitMix64 generator seeded by [`SyntheticOptions::seed`].

use std::io::{self, Write};

use ent_kernel::naming;
use ent_platform::registry::codes::{luhn_check_digit, uai_check_letter};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticOptions {
    /// Number of data rows (établissements) to write.
    pub etablissements: usize,
    /// Number of communes to spread over the départements. Clamped to at least
    /// one per département (101) and to the INSEE code capacity.
    pub communes: usize,
    /// Seed of the pseudo-random generator.
    pub seed: u64,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions { etablissements: 66_000, communes: 35_000, seed: 42 }
    }
}

/// What was written. Communes, départements and académies are the distinct
/// values referenced by the written rows (what an importer will see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticSummary {
    pub rows: usize,
    pub communes: usize,
    pub departements: usize,
    pub academies: usize,
}

/// Column names of the export, in order.
pub const HEADER: [&str; 22] = [
    "Identifiant_de_l_etablissement",
    "Nom_etablissement",
    "Type_etablissement",
    "Statut_public_prive",
    "Adresse_1",
    "Code_postal",
    "Code_commune",
    "Nom_commune",
    "Code_departement",
    "Code_academie",
    "Code_region",
    "Ecole_maternelle",
    "Ecole_elementaire",
    "Mail",
    "SIREN_SIRET",
    "Libelle_departement",
    "Libelle_academie",
    "Libelle_region",
    "etat",
    "code_nature",
    "libelle_nature",
    "Nombre_d_eleves",
];

/// Writes the UTF-8 BOM, the header line and `etablissements` rows.
///
/// Rows are streamed to `out` (wrap it in a `BufWriter`); only the commune table
/// is kept in memory.
///
/// # Errors
///
/// Any error of `out`, or `InvalidInput` if `etablissements` is so large (millions)
/// that the UAI number space is exhausted.
pub fn write_annuaire<W: Write>(mut out: W, opts: &SyntheticOptions) -> io::Result<SyntheticSummary> {
    out.write_all("\u{FEFF}".as_bytes())?;
    let mut wtr = csv::WriterBuilder::new().delimiter(b';').from_writer(out);
    wtr.write_record(HEADER)?;

    let geo = Geography::resolve();
    let communes = CommuneTable::build(opts.communes, opts.seed);
    let mut rows = RowGenerator::new(&geo, &communes, opts.seed);
    let mut seen = SeenCounter::new(communes.len());

    for _ in 0..opts.etablissements {
        let row = rows.next_row()?;
        seen.record(&geo, row.dep, row.commune);
        wtr.write_record(row.fields.iter())?;
    }
    wtr.flush()?;

    Ok(seen.summary(opts.etablissements))
}

// ---------------------------------------------------------------------------
// Pseudo-random generator
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fast, good enough for synthetic data, fully deterministic.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for one independent stream (`stream` distinguishes the uses of one seed).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut g = SplitMix64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        g.next_u64(); // decorrelate nearby seeds
        g
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (`n > 0`), multiply-shift reduction.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    fn per_mille(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// Static geography
// ---------------------------------------------------------------------------

struct Region {
    code: &'static str,
    name: &'static str,
}

struct Academie {
    code: &'static str,
    name: &'static str,
    /// Mail domain is `ac-<slug>.fr`.
    slug: &'static str,
    region: &'static str,
}

struct Departement {
    code: &'static str,
    name: &'static str,
    academie: &'static str,
    /// Approximate population in thousands: weights établissements.
    population_k: u32,
    /// Approximate real number of communes: weights the commune spread.
    communes: u32,
}

const fn reg(code: &'static str, name: &'static str) -> Region {
    Region { code, name }
}

const fn aca(code: &'static str, name: &'static str, slug: &'static str, region: &'static str) -> Academie {
    Academie { code, name, slug, region }
}

const fn dep(
    code: &'static str,
    name: &'static str,
    academie: &'static str,
    population_k: u32,
    communes: u32,
) -> Departement {
    Departement { code, name, academie, population_k, communes }
}

static REGIONS: [Region; 18] = [
    reg("01", "Guadeloupe"),
    reg("02", "Martinique"),
    reg("03", "Guyane"),
    reg("04", "La Réunion"),
    reg("06", "Mayotte"),
    reg("11", "Ile-de-France"),
    reg("24", "Centre-Val de Loire"),
    reg("27", "Bourgogne-Franche-Comté"),
    reg("28", "Normandie"),
    reg("32", "Hauts-de-France"),
    reg("44", "Grand Est"),
    reg("52", "Pays de la Loire"),
    reg("53", "Bretagne"),
    reg("75", "Nouvelle-Aquitaine"),
    reg("76", "Occitanie"),
    reg("84", "Auvergne-Rhône-Alpes"),
    reg("93", "Provence-Alpes-Côte d'Azur"),
    reg("94", "Corse"),
];

static ACADEMIES: [Academie; 30] = [
    aca("01", "Paris", "paris", "11"),
    aca("02", "Aix-Marseille", "aix-marseille", "93"),
    aca("03", "Besançon", "besancon", "27"),
    aca("04", "Bordeaux", "bordeaux", "75"),
    aca("06", "Clermont-Ferrand", "clermont", "84"),
    aca("07", "Dijon", "dijon", "27"),
    aca("08", "Grenoble", "grenoble", "84"),
    aca("09", "Lille", "lille", "32"),
    aca("10", "Lyon", "lyon", "84"),
    aca("11", "Montpellier", "montpellier", "76"),
    aca("12", "Nancy-Metz", "nancy-metz", "44"),
    aca("13", "Poitiers", "poitiers", "75"),
    aca("14", "Rennes", "rennes", "53"),
    aca("15", "Strasbourg", "strasbourg", "44"),
    aca("16", "Toulouse", "toulouse", "76"),
    aca("17", "Nantes", "nantes", "52"),
    aca("18", "Orléans-Tours", "orleans-tours", "24"),
    aca("19", "Reims", "reims", "44"),
    aca("20", "Amiens", "amiens", "32"),
    aca("22", "Limoges", "limoges", "75"),
    aca("23", "Nice", "nice", "93"),
    aca("24", "Créteil", "creteil", "11"),
    aca("25", "Versailles", "versailles", "11"),
    aca("27", "Corse", "corse", "94"),
    aca("28", "La Réunion", "reunion", "04"),
    aca("31", "Martinique", "martinique", "02"),
    aca("32", "Guadeloupe", "guadeloupe", "01"),
    aca("33", "Guyane", "guyane", "03"),
    aca("43", "Mayotte", "mayotte", "06"),
    aca("70", "Normandie", "normandie", "28"),
];

static DEPARTEMENTS: [Departement; 101] = [
    dep("01", "Ain", "10", 665, 393),
    dep("02", "Aisne", "20", 526, 798),
    dep("03", "Allier", "06", 335, 317),
    dep("04", "Alpes-de-Haute-Provence", "02", 166, 198),
    dep("05", "Hautes-Alpes", "02", 141, 162),
    dep("06", "Alpes-Maritimes", "23", 1098, 163),
    dep("07", "Ardèche", "08", 329, 335),
    dep("08", "Ardennes", "19", 270, 449),
    dep("09", "Ariège", "16", 154, 325),
    dep("10", "Aube", "19", 310, 431),
    dep("11", "Aude", "11", 374, 433),
    dep("12", "Aveyron", "16", 279, 285),
    dep("13", "Bouches-du-Rhône", "02", 2044, 119),
    dep("14", "Calvados", "70", 699, 528),
    dep("15", "Cantal", "06", 144, 246),
    dep("16", "Charente", "13", 352, 364),
    dep("17", "Charente-Maritime", "13", 659, 463),
    dep("18", "Cher", "18", 300, 287),
    dep("19", "Corrèze", "22", 240, 279),
    dep("21", "Côte-d'Or", "07", 535, 698),
    dep("22", "Côtes-d'Armor", "14", 602, 348),
    dep("23", "Creuse", "22", 115, 256),
    dep("24", "Dordogne", "04", 413, 503),
    dep("25", "Doubs", "03", 544, 571),
    dep("26", "Drôme", "08", 520, 363),
    dep("27", "Eure", "70", 600, 585),
    dep("28", "Eure-et-Loir", "18", 432, 365),
    dep("29", "Finistère", "14", 918, 277),
    dep("30", "Gard", "11", 751, 351),
    dep("31", "Haute-Garonne", "16", 1435, 586),
    dep("32", "Gers", "16", 191, 461),
    dep("33", "Gironde", "04", 1655, 535),
    dep("34", "Hérault", "11", 1203, 342),
    dep("35", "Ille-et-Vilaine", "14", 1095, 333),
    dep("36", "Indre", "18", 216, 241),
    dep("37", "Indre-et-Loire", "18", 611, 272),
    dep("38", "Isère", "08", 1280, 512),
    dep("39", "Jura", "03", 258, 494),
    dep("40", "Landes", "04", 420, 327),
    dep("41", "Loir-et-Cher", "18", 328, 267),
    dep("42", "Loire", "10", 765, 323),
    dep("43", "Haute-Loire", "06", 228, 257),
    dep("44", "Loire-Atlantique", "17", 1460, 207),
    dep("45", "Loiret", "18", 683, 325),
    dep("46", "Lot", "16", 174, 313),
    dep("47", "Lot-et-Garonne", "04", 331, 319),
    dep("48", "Lozère", "11", 76, 152),
    dep("49", "Maine-et-Loire", "17", 822, 177),
    dep("50", "Manche", "70", 492, 446),
    dep("51", "Marne", "19", 565, 613),
    dep("52", "Haute-Marne", "19", 171, 426),
    dep("53", "Mayenne", "17", 307, 240),
    dep("54", "Meurthe-et-Moselle", "12", 733, 591),
    dep("55", "Meuse", "12", 181, 499),
    dep("56", "Morbihan", "14", 766, 249),
    dep("57", "Moselle", "12", 1046, 725),
    dep("58", "Nièvre", "07", 201, 309),
    dep("59", "Nord", "09", 2611, 647),
    dep("60", "Oise", "20", 831, 679),
    dep("61", "Orne", "70", 277, 385),
    dep("62", "Pas-de-Calais", "09", 1462, 890),
    dep("63", "Puy-de-Dôme", "06", 662, 464),
    dep("64", "Pyrénées-Atlantiques", "04", 688, 546),
    dep("65", "Hautes-Pyrénées", "16", 229, 469),
    dep("66", "Pyrénées-Orientales", "11", 482, 226),
    dep("67", "Bas-Rhin", "15", 1152, 514),
    dep("68", "Haut-Rhin", "15", 768, 366),
    dep("69", "Rhône", "10", 1883, 267),
    dep("70", "Haute-Saône", "03", 233, 539),
    dep("71", "Saône-et-Loire", "07", 551, 565),
    dep("72", "Sarthe", "17", 566, 354),
    dep("73", "Savoie", "08", 437, 273),
    dep("74", "Haute-Savoie", "08", 839, 279),
    dep("75", "Paris", "01", 2133, 20),
    dep("76", "Seine-Maritime", "70", 1255, 708),
    dep("77", "Seine-et-Marne", "24", 1437, 507),
    dep("78", "Yvelines", "25", 1449, 259),
    dep("79", "Deux-Sèvres", "13", 375, 256),
    dep("80", "Somme", "20", 568, 772),
    dep("81", "Tarn", "16", 392, 314),
    dep("82", "Tarn-et-Garonne", "16", 262, 195),
    dep("83", "Var", "23", 1090, 153),
    dep("84", "Vaucluse", "02", 562, 151),
    dep("85", "Vendée", "17", 699, 255),
    dep("86", "Vienne", "13", 439, 266),
    dep("87", "Haute-Vienne", "22", 372, 195),
    dep("88", "Vosges", "12", 361, 507),
    dep("89", "Yonne", "07", 335, 423),
    dep("90", "Territoire de Belfort", "03", 141, 101),
    dep("91", "Essonne", "25", 1306, 194),
    dep("92", "Hauts-de-Seine", "25", 1625, 36),
    dep("93", "Seine-Saint-Denis", "24", 1655, 40),
    dep("94", "Val-de-Marne", "24", 1407, 47),
    dep("95", "Val-d'Oise", "25", 1249, 184),
    dep("2A", "Corse-du-Sud", "27", 160, 124),
    dep("2B", "Haute-Corse", "27", 181, 236),
    dep("971", "Guadeloupe", "32", 384, 32),
    dep("972", "Martinique", "31", 361, 34),
    dep("973", "Guyane", "33", 286, 22),
    dep("974", "La Réunion", "28", 871, 24),
    dep("976", "Mayotte", "43", 299, 17),
];

impl Departement {
    /// `Code_departement` as the real file writes it: 3 chars ("094", "02A", "971").
    fn csv_code(&self) -> String {
        format!("{:0>3}", self.code)
    }

    /// The 3 leading digits of the UAIs of this département (2A → 620, 2B → 720).
    fn uai_prefix(&self) -> u32 {
        match self.code {
            "2A" => 620,
            "2B" => 720,
            code => code.parse().expect("numeric département code"),
        }
    }

    /// Number of digits after the département code in an INSEE commune code.
    fn insee_digits(&self) -> usize {
        5 - self.code.len()
    }

    /// How many distinct INSEE commune codes this département can hold.
    fn commune_capacity(&self) -> usize {
        10usize.pow(self.insee_digits() as u32) - 1
    }
}

/// Indices linking each département to its académie and région.
struct Geography {
    /// `academie_of[d]` is the index in `ACADEMIES` of département `d`.
    academie_of: Vec<usize>,
    /// `region_of[a]` is the index in `REGIONS` of académie `a`.
    region_of: Vec<usize>,
}

impl Geography {
    fn resolve() -> Self {
        let academie_of = DEPARTEMENTS.iter().map(|d| index_of(&ACADEMIES, |a| a.code == d.academie)).collect();
        let region_of = ACADEMIES.iter().map(|a| index_of(&REGIONS, |r| r.code == a.region)).collect();
        Geography { academie_of, region_of }
    }

    fn academie(&self, dep: usize) -> &'static Academie {
        &ACADEMIES[self.academie_of[dep]]
    }

    fn region(&self, dep: usize) -> &'static Region {
        &REGIONS[self.region_of[self.academie_of[dep]]]
    }
}

/// Position of the single item matching `pred`; the static tables are checked by tests.
fn index_of<T>(items: &[T], pred: impl Fn(&T) -> bool) -> usize {
    items.iter().position(pred).expect("static geography tables are consistent")
}

// ---------------------------------------------------------------------------
// Communes
// ---------------------------------------------------------------------------

struct Commune {
    insee: String,
    name: String,
    postal: String,
    /// First 8 digits of the commune's SIREN (the 9th is the Luhn digit).
    siren8: u64,
}

/// All communes, grouped by département.
struct CommuneTable {
    communes: Vec<Commune>,
    /// `by_dep[d]` is the range of `communes` belonging to département `d`.
    by_dep: Vec<std::ops::Range<usize>>,
}

const COMMUNE_STEMS: &[&str] = &[
    "Saint-Martin",
    "Sainte-Marie",
    "L'Haÿ",
    "Villeneuve",
    "Beaulieu",
    "Châteauneuf",
    "Montreuil",
    "Fontaine",
    "Le Plessis",
    "La Chapelle",
    "Saint-Étienne",
    "Bourg",
    "Écouen",
    "Neuvillé",
    "Saint-Germain",
    "Roche",
    "Belleville",
    "L'Île",
    "Mont-Saint-Père",
    "Pont-Évêque",
    "Vaux",
    "Bois-d'Arcy",
    "Orée",
    "Crécy",
    "Saint-Rémy",
    "Noël",
    "Château-Thierry",
    "Aÿ",
    "Vitry",
];

const COMMUNE_SUFFIXES: &[&str] = &[
    "",
    "",
    "",
    "-sur-Mer",
    "-les-Roses",
    "-en-Brie",
    "-la-Forêt",
    "-sous-Bois",
    "-de-Bretagne",
    "-l'Église",
    "-d'Azur",
    "-le-Château",
    "-lès-Bains",
    "-sur-Loire",
];

impl CommuneTable {
    fn build(requested: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed, 1);
        let weights: Vec<u64> = DEPARTEMENTS.iter().map(|d| u64::from(d.communes)).collect();
        let caps: Vec<usize> = DEPARTEMENTS.iter().map(Departement::commune_capacity).collect();
        let counts = apportion(requested, &weights, &caps);

        let mut communes = Vec::with_capacity(counts.iter().sum());
        let mut by_dep = Vec::with_capacity(DEPARTEMENTS.len());
        for (d, &count) in DEPARTEMENTS.iter().zip(&counts) {
            let start = communes.len();
            for i in 0..count {
                communes.push(make_commune(d, i, count, &mut rng));
            }
            by_dep.push(start..communes.len());
        }
        CommuneTable { communes, by_dep }
    }

    fn len(&self) -> usize {
        self.communes.len()
    }
}

/// The `i`-th of `count` communes of département `d`.
fn make_commune(d: &Departement, i: usize, count: usize, rng: &mut SplitMix64) -> Commune {
    // Spread the numbers over the whole range, like real (alphabetical, gapped) INSEE codes.
    let number = 1 + i * d.commune_capacity() / count;
    let insee = format!("{}{:0width$}", d.code, number, width = d.insee_digits());
    let name = format!("{}{}-{}", rng.pick(COMMUNE_STEMS), rng.pick(COMMUNE_SUFFIXES), i + 1);
    Commune { postal: postal_code(d, i), siren8: commune_siren8(&insee), insee, name }
}

/// A plausible 5-digit postal code for the `i`-th commune of département `d`.
fn postal_code(d: &Departement, i: usize) -> String {
    match d.code {
        "2A" => format!("20{:03}", 10 * (i % 20)),
        "2B" => format!("20{:03}", 200 + 10 * (i % 50)),
        code if code.len() == 3 => format!("{}{:02}", code, 10 * (1 + i % 9)),
        code => format!("{}{:03}", code, 10 * (1 + i % 99)),
    }
}

/// Communes' SIRENs are "21" + département + "0" + commune number (2A/2B read as 20):
/// Ajaccio (2A004) is 21200004 + Luhn digit 6.
fn commune_siren8(insee: &str) -> u64 {
    let numeric: u64 = insee.replace(['A', 'B'], "0").parse().expect("numeric INSEE code");
    21_000_000 + (numeric / 1000) * 10_000 + numeric % 1000
}

/// Splits `total` into one share per weight, each at least 1 and at most its cap,
/// proportionally to the weights (largest-remainder method, integer-only so it is
/// deterministic everywhere). `total` is clamped to `[len, sum(caps)]`.
fn apportion(total: usize, weights: &[u64], caps: &[usize]) -> Vec<usize> {
    let n = weights.len();
    let total = total.clamp(n, caps.iter().sum());
    let mut alloc = vec![1usize; n];
    let mut remaining = total - n;
    while remaining > 0 {
        let open: Vec<usize> = (0..n).filter(|&i| alloc[i] < caps[i]).collect();
        let open_weight: u64 = open.iter().map(|&i| weights[i].max(1)).sum();
        let mut given = 0;
        let mut fractions = Vec::with_capacity(open.len());
        for &i in &open {
            let exact = remaining as u128 * u128::from(weights[i].max(1));
            let share = (exact / u128::from(open_weight)) as usize;
            let share = share.min(caps[i] - alloc[i]);
            alloc[i] += share;
            given += share;
            fractions.push((exact % u128::from(open_weight), i));
        }
        remaining -= given;
        // Hand out the leftover units, largest fractional parts first (ties: lowest index).
        fractions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in &fractions {
            if remaining == 0 {
                break;
            }
            if alloc[i] < caps[i] {
                alloc[i] += 1;
                remaining -= 1;
            }
        }
    }
    alloc
}

// ---------------------------------------------------------------------------
// Natures (kinds of établissements)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ecole,
    College,
    Lycee,
    Erea,
    /// Kinds an ENT does not host: administrative services, CIO, médico-social.
    Other,
}

struct Nature {
    code: &'static str,
    libelle: &'static str,
    type_etablissement: &'static str,
    kind: Kind,
    /// Share of rows, per mille (the table sums to 1000).
    per_mille: u64,
    /// Whether private établissements of this nature exist.
    may_be_private: bool,
    /// Name prefix of public and private établissements.
    public_prefix: &'static str,
    private_prefix: &'static str,
    /// Range of `Nombre_d_eleves`; `None` means the column is empty.
    pupils: Option<(u64, u64)>,
}

static NATURES: [Nature; 10] = [
    Nature {
        code: "101",
        libelle: "ECOLE MATERNELLE",
        type_etablissement: "Ecole",
        kind: Kind::Ecole,
        per_mille: 227,
        may_be_private: true,
        public_prefix: "Ecole maternelle publique",
        private_prefix: "Ecole maternelle privée",
        pupils: Some((40, 250)),
    },
    Nature {
        code: "151",
        libelle: "ECOLE DE NIVEAU ELEMENTAIRE",
        type_etablissement: "Ecole",
        kind: Kind::Ecole,
        per_mille: 523,
        may_be_private: true,
        public_prefix: "Ecole élémentaire publique",
        private_prefix: "Ecole primaire privée",
        pupils: Some((40, 400)),
    },
    Nature {
        code: "152",
        libelle: "ECOLE ELEMENTAIRE D'APPLICATION",
        type_etablissement: "Ecole",
        kind: Kind::Ecole,
        per_mille: 8,
        may_be_private: false,
        public_prefix: "Ecole élémentaire d'application",
        private_prefix: "",
        pupils: Some((100, 400)),
    },
    Nature {
        code: "340",
        libelle: "COLLEGE",
        type_etablissement: "Collège",
        kind: Kind::College,
        per_mille: 110,
        may_be_private: true,
        public_prefix: "Collège",
        private_prefix: "Collège privé",
        pupils: Some((200, 900)),
    },
    Nature {
        code: "300",
        libelle: "LYCEE D'ENSEIGNEMENT GENERAL ET TECHNOLOGIQUE",
        type_etablissement: "Lycée",
        kind: Kind::Lycee,
        per_mille: 24,
        may_be_private: true,
        public_prefix: "Lycée général et technologique",
        private_prefix: "Lycée général et technologique privé",
        pupils: Some((400, 2000)),
    },
    Nature {
        code: "306",
        libelle: "LYCEE POLYVALENT",
        type_etablissement: "Lycée",
        kind: Kind::Lycee,
        per_mille: 21,
        may_be_private: true,
        public_prefix: "Lycée polyvalent",
        private_prefix: "Lycée polyvalent privé",
        pupils: Some((400, 2000)),
    },
    Nature {
        code: "320",
        libelle: "LYCEE PROFESSIONNEL",
        type_etablissement: "Lycée",
        kind: Kind::Lycee,
        per_mille: 15,
        may_be_private: true,
        public_prefix: "Lycée professionnel",
        private_prefix: "Lycée professionnel privé",
        pupils: Some((400, 1200)),
    },
    Nature {
        code: "370",
        libelle: "ETABLISSEMENT REGIONAL D'ENSEIGNEMENT ADAPTE",
        type_etablissement: "EREA",
        kind: Kind::Erea,
        per_mille: 2,
        may_be_private: false,
        public_prefix: "EREA",
        private_prefix: "",
        pupils: Some((60, 250)),
    },
    Nature {
        code: "800",
        libelle: "SERVICE ADMINISTRATIF",
        type_etablissement: "Service Administratif",
        kind: Kind::Other,
        per_mille: 35,
        may_be_private: false,
        public_prefix: "Circonscription d'inspection du 1er degré",
        private_prefix: "",
        pupils: None,
    },
    Nature {
        code: "810",
        libelle: "CENTRE D'INFORMATION ET D'ORIENTATION",
        type_etablissement: "Information et orientation",
        kind: Kind::Other,
        per_mille: 35,
        may_be_private: false,
        public_prefix: "CIO",
        private_prefix: "",
        pupils: None,
    },
];

// Médico-social shares the "Other" budget with 800/810: it is drawn from 810's share.
static MEDICO_SOCIAL: Nature = Nature {
    code: "450",
    libelle: "INSTITUT MEDICO-EDUCATIF",
    type_etablissement: "Médico-social",
    kind: Kind::Other,
    per_mille: 0,
    may_be_private: true,
    public_prefix: "IME",
    private_prefix: "IME privé",
    pupils: None,
};

/// Share of private établissements among natures that may be private, per mille.
/// About 94% of rows may be private, so ~16% of them gives ~15% overall.
const PRIVATE_PER_MILLE: u64 = 160;
/// Share of closed établissements, per mille.
const CLOSED_PER_MILLE: u64 = 20;

fn pick_nature(rng: &mut SplitMix64) -> &'static Nature {
    let mut r = rng.below(1000);
    for nature in &NATURES {
        if r < nature.per_mille {
            // Half of the 810 budget goes to médico-social (450): 3.5% + 1.75% + 1.75%.
            if nature.code == "810" && rng.below(2) == 0 {
                return &MEDICO_SOCIAL;
            }
            return nature;
        }
        r -= nature.per_mille;
    }
    unreachable!("NATURES per-mille shares sum to 1000")
}

// ---------------------------------------------------------------------------
// UAI allocation
// ---------------------------------------------------------------------------

/// Hands out unique UAIs: 3-digit département prefix + 4 digits + check letter, so that a
/// UAI is numbered in its département as the import checks. A département has 10,000
/// numbers; a school drawn in a full one goes to the next département with room.
struct UaiAllocator {
    blocks: Vec<UaiBlock>,
}

struct UaiBlock {
    prefix: u32,
    offset: u32,
    used: u32,
}

/// Coprime with 10,000: `offset + k * STRIDE` visits all 4-digit suffixes once.
const UAI_STRIDE: u32 = 7919;

impl UaiAllocator {
    fn new(rng: &mut SplitMix64) -> Self {
        let blocks = DEPARTEMENTS
            .iter()
            .map(|d| UaiBlock { prefix: d.uai_prefix(), offset: rng.below(10_000) as u32, used: 0 })
            .collect();
        UaiAllocator { blocks }
    }

    /// `dep`, or the first département after it with a number left.
    fn with_room(&self, dep: usize) -> io::Result<usize> {
        let n = self.blocks.len();
        (0..n)
            .map(|k| (dep + k) % n)
            .find(|&d| self.blocks[d].used < 10_000)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too many établissements: UAI space exhausted"))
    }

    /// The 7 digits of a fresh UAI in département `dep`, which has room ([`Self::with_room`]).
    fn next(&mut self, dep: usize) -> u32 {
        let block = &mut self.blocks[dep];
        let suffix = (block.offset + block.used * UAI_STRIDE) % 10_000;
        block.used += 1;
        block.prefix * 10_000 + suffix
    }
}

fn format_uai(seven_digits: u32) -> String {
    format!("{:07}{}", seven_digits, uai_check_letter(seven_digits))
}

// ---------------------------------------------------------------------------
// SIRET
// ---------------------------------------------------------------------------

/// A 14-digit SIRET whose SIREN (9 digits) and whole number both pass Luhn.
/// `siren8 < 10^8`, `nic4 < 10^4`.
fn siret(siren8: u64, nic4: u64) -> String {
    let siren = siren8 * 10 + luhn_check_digit(siren8);
    let body = siren * 10_000 + nic4;
    format!("{:014}", body * 10 + luhn_check_digit(body))
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

const PUBLIC_PATRONS: &[&str] = &[
    "Jules Ferry",
    "Victor Hugo",
    "Jean Moulin",
    "Louis Pasteur",
    "Jean Jaurès",
    "Marie Curie",
    "Paul Langevin",
    "Jacques Prévert",
    "Albert Camus",
    "Jean de La Fontaine",
    "Anatole France",
    "Condorcet",
    "Jean Macé",
    "Paul Éluard",
    "Louise Michel",
    "Simone Veil",
    "Antoine de Saint-Exupéry",
    "Marcel Pagnol",
    "Georges Brassens",
    "Les Tilleuls",
    "Les Lilas",
    "Le Petit Prince",
    "Françoise Dolto",
    "Émile Zola",
    "Jules Verne",
    "Joliot-Curie",
    "Romain Rolland",
    "Henri Wallon",
    "\"Les Coquelicots\"",
    "Aimé Césaire",
];

const PRIVATE_PATRONS: &[&str] = &[
    "Sainte-Marie",
    "Saint-Joseph",
    "Notre-Dame",
    "Jeanne d'Arc",
    "Saint-Michel",
    "Sacré-Cœur",
    "Immaculée Conception",
    "La Salle",
    "Saint-Louis",
    "Sainte-Thérèse",
];

const STREETS: &[&str] = &[
    "rue Victor Hugo",
    "rue de la République",
    "avenue Jean Jaurès",
    "place de l'Église",
    "rue des Écoles",
    "boulevard du Général de Gaulle",
    "rue Pasteur",
    "avenue de la Gare",
    "chemin du Moulin",
    "allée des Tilleuls",
    "rue du 8 Mai 1945",
    "impasse des Œillets",
];

/// One generated row: its fields, département and commune indices.
struct Row {
    fields: [String; 22],
    dep: usize,
    commune: usize,
}

struct RowGenerator<'a> {
    geo: &'a Geography,
    communes: &'a CommuneTable,
    rng: SplitMix64,
    uai: UaiAllocator,
    /// Cumulative population weights of the départements.
    cumulative: Vec<u64>,
    /// Precomputed `Code_departement` column values.
    dep_codes: Vec<String>,
}

impl<'a> RowGenerator<'a> {
    fn new(geo: &'a Geography, communes: &'a CommuneTable, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed, 2);
        let uai = UaiAllocator::new(&mut rng);
        let cumulative = DEPARTEMENTS
            .iter()
            .scan(0u64, |acc, d| {
                *acc += u64::from(d.population_k);
                Some(*acc)
            })
            .collect();
        let dep_codes = DEPARTEMENTS.iter().map(Departement::csv_code).collect();
        RowGenerator { geo, communes, rng, uai, cumulative, dep_codes }
    }

    /// A département drawn with probability proportional to its population.
    fn pick_departement(&mut self) -> usize {
        let total = *self.cumulative.last().expect("non-empty table");
        let r = self.rng.below(total);
        self.cumulative.partition_point(|&c| c <= r)
    }

    /// A commune of `dep`, skewed towards the first ones (a few big towns, many villages).
    fn pick_commune(&mut self, dep: usize) -> usize {
        let range = self.communes.by_dep[dep].clone();
        let n = range.len() as u64;
        let skewed = self.rng.below(n).min(self.rng.below(n));
        range.start + skewed as usize
    }

    fn next_row(&mut self) -> io::Result<Row> {
        let drawn = self.pick_departement();
        let dep = self.uai.with_room(drawn)?;
        let commune_idx = self.pick_commune(dep);
        let nature = pick_nature(&mut self.rng);
        let private = nature.may_be_private && self.rng.per_mille(PRIVATE_PER_MILLE);
        let uai_digits = self.uai.next(dep);
        let uai = format_uai(uai_digits);

        let d = &DEPARTEMENTS[dep];
        let academie = self.geo.academie(dep);
        let region = self.geo.region(dep);
        let commune = &self.communes.communes[commune_idx];
        let (maternelle, elementaire) = school_flags(nature);

        let fields = [
            uai.clone(),
            self.name(nature, private, commune),
            nature.type_etablissement.to_string(),
            if private { "Privé" } else { "Public" }.to_string(),
            self.address(),
            commune.postal.clone(),
            commune.insee.clone(),
            commune.name.clone(),
            self.dep_codes[dep].clone(),
            academie.code.to_string(),
            region.code.to_string(),
            maternelle.to_string(),
            elementaire.to_string(),
            format!("ce.{}@ac-{}.fr", uai, academie.slug),
            self.siret(nature, private, commune, uai_digits),
            d.name.to_string(),
            academie.name.to_string(),
            region.name.to_string(),
            if self.rng.per_mille(CLOSED_PER_MILLE) { "FERME" } else { "OUVERT" }.to_string(),
            nature.code.to_string(),
            nature.libelle.to_string(),
            self.pupils(nature),
        ];
        Ok(Row { fields, dep, commune: commune_idx })
    }

    fn name(&mut self, nature: &Nature, private: bool, commune: &Commune) -> String {
        match nature.code {
            "800" | "810" => format!("{} {}", nature.public_prefix, naming::de(&commune.name)),
            _ if private => format!("{} {}", nature.private_prefix, self.rng.pick(PRIVATE_PATRONS)),
            _ => format!("{} {}", nature.public_prefix, self.rng.pick(PUBLIC_PATRONS)),
        }
    }

    fn address(&mut self) -> String {
        // A few addresses carry a ';' so that quoting is exercised, as in the real file.
        if self.rng.per_mille(5) {
            return format!("Lieu-dit Le Bourg; BP {}", self.rng.range(1, 99));
        }
        let street = self.rng.pick(STREETS);
        if street.starts_with("place") {
            return street.to_string();
        }
        format!("{} {}", self.rng.range(1, 120), street)
    }

    /// Public écoles carry the commune's SIRET; public EPLEs their own, numbered 19…; private
    /// établissements their organisme de gestion's, an association's (7…). The same draws
    /// whatever the sector, so that the rows after one are the same.
    fn siret(&mut self, nature: &Nature, private: bool, commune: &Commune, uai_digits: u32) -> String {
        let own = |first: u64| siret(first + u64::from(uai_digits) % 1_000_000, 1);
        match nature.kind {
            Kind::Ecole => {
                let nic = self.rng.range(1, 999);
                if private {
                    own(77_500_000)
                } else {
                    siret(commune.siren8, nic)
                }
            }
            _ if private => own(77_500_000),
            _ => own(19_000_000),
        }
    }

    fn pupils(&mut self, nature: &Nature) -> String {
        match nature.pupils {
            Some((lo, hi)) => self.rng.range(lo, hi).to_string(),
            None => String::new(),
        }
    }
}

/// `Ecole_maternelle` and `Ecole_elementaire`: "1"/"0" for écoles, empty otherwise.
fn school_flags(nature: &Nature) -> (&'static str, &'static str) {
    match (nature.kind, nature.code) {
        (Kind::Ecole, "101") => ("1", "0"),
        (Kind::Ecole, _) => ("0", "1"),
        _ => ("", ""),
    }
}

/// Distinct communes, départements and académies referenced by written rows.
struct SeenCounter {
    communes: Vec<bool>,
    departements: Vec<bool>,
    academies: Vec<bool>,
}

impl SeenCounter {
    fn new(communes: usize) -> Self {
        SeenCounter {
            communes: vec![false; communes],
            departements: vec![false; DEPARTEMENTS.len()],
            academies: vec![false; ACADEMIES.len()],
        }
    }

    fn record(&mut self, geo: &Geography, dep: usize, commune: usize) {
        self.communes[commune] = true;
        self.departements[dep] = true;
        self.academies[geo.academie_of[dep]] = true;
    }

    fn summary(&self, rows: usize) -> SyntheticSummary {
        let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
        SyntheticSummary {
            rows,
            communes: count(&self.communes),
            departements: count(&self.departements),
            academies: count(&self.academies),
        }
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use ent_platform::registry::codes::{parse_siren, parse_siret};
    use std::collections::{HashMap, HashSet};

    fn generate(opts: &SyntheticOptions) -> (Vec<u8>, SyntheticSummary) {
        let mut out = Vec::new();
        let summary = write_annuaire(&mut out, opts).expect("generation succeeds");
        (out, summary)
    }

    fn small() -> SyntheticOptions {
        SyntheticOptions { etablissements: 5_000, communes: 2_000, seed: 7 }
    }

    /// Parses the output back (after the BOM) into records of column name → value.
    fn parse(bytes: &[u8]) -> Vec<HashMap<String, String>> {
        let body = bytes.strip_prefix("\u{FEFF}".as_bytes()).expect("output starts with a BOM");
        let mut rdr = csv::ReaderBuilder::new().delimiter(b';').from_reader(body);
        let headers = rdr.headers().expect("header").clone();
        rdr.records()
            .map(|r| {
                let r = r.expect("well-formed record");
                assert_eq!(r.len(), HEADER.len());
                headers.iter().zip(r.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
            })
            .collect()
    }

    #[test]
    fn header_is_exact() {
        let (out, _) = generate(&SyntheticOptions { etablissements: 0, ..small() });
        let expected = "\u{FEFF}Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Adresse_1;Code_postal;Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;Ecole_maternelle;Ecole_elementaire;Mail;SIREN_SIRET;Libelle_departement;Libelle_academie;Libelle_region;etat;code_nature;libelle_nature;Nombre_d_eleves\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn row_count_matches() {
        for n in [0, 1, 10, 5_000] {
            let (out, summary) = generate(&SyntheticOptions { etablissements: n, ..small() });
            assert_eq!(parse(&out).len(), n);
            assert_eq!(summary.rows, n);
        }
    }

    #[test]
    fn uais_are_unique_with_correct_letter_and_prefix() {
        let (out, _) = generate(&small());
        let mut seen = HashSet::new();
        for rec in parse(&out) {
            let uai = &rec["Identifiant_de_l_etablissement"];
            assert_eq!(uai.len(), 8, "{uai}");
            let digits: u32 = uai[..7].parse().expect("7 digits");
            assert_eq!(uai.chars().last(), Some(uai_check_letter(digits)), "{uai}");
            let expected_prefix = match rec["Code_departement"].as_str() {
                "02A" => "620".to_string(),
                "02B" => "720".to_string(),
                code => code.to_string(),
            };
            assert!(uai.starts_with(&expected_prefix), "{uai} in {}", rec["Code_departement"]);
            assert!(seen.insert(uai.clone()), "duplicate UAI {uai}");
            assert_eq!(
                rec["Mail"],
                format!("ce.{uai}@ac-{}.fr", ACADEMIES.iter().find(|a| a.code == rec["Code_academie"]).unwrap().slug)
            );
        }
    }

    #[test]
    fn a_full_departement_sends_its_schools_to_the_next_one_without_collisions() {
        let mut rng = SplitMix64::new(1, 0);
        let mut alloc = UaiAllocator::new(&mut rng);
        let mut seen = HashSet::new();
        for i in 0..25_000 {
            let dep = alloc.with_room(0).unwrap();
            assert_eq!(dep, i / 10_000, "{i}");
            let digits = alloc.next(dep);
            assert_eq!(digits / 10_000, DEPARTEMENTS[dep].uai_prefix(), "{digits}");
            assert!(seen.insert(digits));
        }
    }

    #[test]
    fn rows_are_coherent_with_the_reference_geography() {
        use ent_platform::registry::codes::{academie_of_departement, departement_of_commune, uai_in_departement};
        for d in &DEPARTEMENTS {
            assert_eq!(academie_of_departement(d.code), Some(d.academie), "{}", d.code);
        }
        let (out, _) = generate(&small());
        for rec in parse(&out) {
            let dept = rec["Code_departement"].trim_start_matches('0').to_string();
            let dept = if dept.len() == 1 { format!("0{dept}") } else { dept };
            assert_eq!(departement_of_commune(&rec["Code_commune"]), dept, "{rec:?}");
            assert_eq!(academie_of_departement(&dept), Some(rec["Code_academie"].as_str()), "{rec:?}");
            assert!(uai_in_departement(&rec["Identifiant_de_l_etablissement"], &dept), "{rec:?}");
        }
    }

    #[test]
    fn insee_codes_are_five_chars_and_unique_per_commune() {
        let table = CommuneTable::build(35_000, 42);
        assert_eq!(table.len(), 35_000);
        let mut codes = HashSet::new();
        for (d, range) in DEPARTEMENTS.iter().zip(&table.by_dep) {
            assert!(!range.is_empty(), "département {} has no commune", d.code);
            for c in &table.communes[range.clone()] {
                assert_eq!(c.insee.len(), 5, "{}", c.insee);
                assert!(c.insee.starts_with(d.code), "{} in {}", c.insee, d.code);
                assert_eq!(c.postal.len(), 5, "{}", c.postal);
                assert!(c.postal.bytes().all(|b| b.is_ascii_digit()), "{}", c.postal);
                assert!(codes.insert(c.insee.clone()), "duplicate INSEE {}", c.insee);
            }
        }

        // In the file, one INSEE code always comes with the same name and département.
        let (out, _) = generate(&small());
        let mut by_code: HashMap<String, (String, String)> = HashMap::new();
        for rec in parse(&out) {
            let code = rec["Code_commune"].clone();
            assert_eq!(code.len(), 5);
            let value = (rec["Nom_commune"].clone(), rec["Code_departement"].clone());
            assert_eq!(by_code.entry(code).or_insert_with(|| value.clone()), &value);
        }
    }

    #[test]
    fn commune_count_is_clamped() {
        assert_eq!(CommuneTable::build(5, 1).len(), 101);
        let capacity: usize = DEPARTEMENTS.iter().map(Departement::commune_capacity).sum();
        assert_eq!(CommuneTable::build(10_000_000, 1).len(), capacity);
    }

    #[test]
    fn sirets_pass_luhn() {
        // Ajaccio's real SIREN is 212000046.
        assert!(siret(commune_siren8("2A004"), 10).starts_with("212000046"));
        let (out, _) = generate(&small());
        for rec in parse(&out) {
            let siret = &rec["SIREN_SIRET"];
            assert_eq!(siret.len(), 14, "{siret}");
            assert!(parse_siret(siret).is_ok(), "SIRET {siret}");
            assert!(parse_siren(&siret[..9]).is_ok(), "SIREN of {siret}");
            let private = rec["Statut_public_prive"] != "Public";
            if private {
                assert!(siret.starts_with('7'), "an association's: {siret}");
            } else if rec["Type_etablissement"] == "Ecole" {
                let insee = rec["Code_commune"].replace(['A', 'B'], "0");
                assert_eq!(&siret[..4], format!("21{}", &insee[..2]));
            } else {
                assert!(siret.starts_with("19"), "an EPLE's: {siret}");
            }
        }
    }

    #[test]
    fn output_is_deterministic() {
        let (a, sa) = generate(&small());
        let (b, sb) = generate(&small());
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _) = generate(&SyntheticOptions { seed: 8, ..small() });
        assert_ne!(a, c);
    }

    #[test]
    fn type_mix_is_close_to_reality() {
        let (out, _) = generate(&SyntheticOptions::default());
        let recs = parse(&out);
        let n = recs.len() as f64;
        let share =
            |pred: &dyn Fn(&HashMap<String, String>) -> bool| recs.iter().filter(|r| pred(r)).count() as f64 / n;
        let by_type = |t: &'static str| share(&move |r| r["Type_etablissement"] == t);
        let close = |actual: f64, expected: f64, tol: f64, what: &str| {
            assert!((actual - expected).abs() <= tol, "{what}: {actual:.4} vs {expected}");
        };
        close(by_type("Ecole"), 0.758, 0.01, "écoles");
        close(by_type("Collège"), 0.11, 0.008, "collèges");
        close(by_type("Lycée"), 0.06, 0.006, "lycées");
        close(by_type("EREA"), 0.002, 0.001, "EREA");
        let other = by_type("Service Administratif") + by_type("Information et orientation") + by_type("Médico-social");
        close(other, 0.07, 0.008, "non-ENT kinds");
        close(share(&|r| r["Statut_public_prive"] == "Privé"), 0.15, 0.01, "privé");
        close(share(&|r| r["etat"] == "FERME"), 0.02, 0.004, "fermé");

        for r in &recs {
            let pupils = &r["Nombre_d_eleves"];
            match r["Type_etablissement"].as_str() {
                "Service Administratif" | "Information et orientation" | "Médico-social" => {
                    assert!(pupils.is_empty())
                }
                _ => assert!(pupils.parse::<u32>().is_ok(), "{pupils}"),
            }
            match r["code_nature"].as_str() {
                "101" => assert_eq!((r["Ecole_maternelle"].as_str(), r["Ecole_elementaire"].as_str()), ("1", "0")),
                "151" | "152" => {
                    assert_eq!((r["Ecole_maternelle"].as_str(), r["Ecole_elementaire"].as_str()), ("0", "1"))
                }
                _ => {}
            }
        }
    }

    #[test]
    fn default_options_cover_the_whole_country() {
        let (out, summary) = generate(&SyntheticOptions::default());
        assert_eq!(summary.rows, 66_000);
        assert_eq!(summary.departements, 101);
        assert_eq!(summary.academies, 30);
        let recs = parse(&out);
        let distinct = |col: &str| recs.iter().map(|r| r[col].clone()).collect::<HashSet<_>>();
        assert_eq!(distinct("Code_departement").len(), 101);
        assert_eq!(distinct("Code_academie").len(), 30);
        assert_eq!(distinct("Code_region").len(), 18);
        assert_eq!(distinct("Code_commune").len(), summary.communes);
        assert!(distinct("Code_departement").iter().all(|c| c.len() == 3));
        for code in ["094", "02A", "02B", "971", "976", "001"] {
            assert!(distinct("Code_departement").contains(code), "{code}");
        }
    }

    #[test]
    fn static_tables_are_consistent() {
        let geo = Geography::resolve();
        let codes: HashSet<_> = DEPARTEMENTS.iter().map(|d| d.code).collect();
        assert_eq!(codes.len(), 101);
        assert!(!codes.contains("20"));
        assert_eq!(ACADEMIES.iter().map(|a| a.code).collect::<HashSet<_>>().len(), 30);
        assert_eq!(REGIONS.iter().map(|r| r.code).collect::<HashSet<_>>().len(), 18);
        // Every académie has départements and every région has académies.
        assert_eq!(geo.academie_of.iter().collect::<HashSet<_>>().len(), 30);
        assert_eq!(geo.region_of.iter().collect::<HashSet<_>>().len(), 18);
        assert_eq!(NATURES.iter().map(|n| n.per_mille).sum::<u64>(), 1000);
    }

    #[test]
    fn apportion_respects_floor_caps_and_total() {
        let alloc = apportion(10, &[1, 1, 8], &[100, 100, 3]);
        assert_eq!(alloc.iter().sum::<usize>(), 10);
        assert!(alloc[2] <= 3 && alloc.iter().all(|&a| a >= 1));
        assert_eq!(apportion(0, &[5, 5], &[10, 10]), vec![1, 1]);
    }
}
