"""The emulator's reference tables: the docs' own rows, completed with plausible ones.

Reference tables do not depend on the seed or the date: the real ones "rarely change", and the
smallholder registers point into them, so they are plain constants. Where the docs show rows
(states, zones, the first zone-state rows, the first SPOC codes and their ids, two certification
bodies, the OSH sample's district 4 = KOTA TINGGI in Johor), these tables reproduce them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

STATES: tuple[tuple[int, str], ...] = (
    (1, "Johor"),
    (2, "Kedah"),
    (3, "Kelantan"),
    (4, "Melaka"),
    (5, "Negeri Sembilan"),
    (6, "Pahang"),
    (7, "Perak"),
    (8, "Perlis"),
    (9, "Pulau Pinang"),
    (10, "Sabah"),
    (11, "Sarawak"),
    (12, "Selangor"),
    (13, "Terengganu"),
    (14, "Kuala Lumpur"),
    (15, "Labuan"),
    (16, "Putrajaya"),
)
STATE_NAMES = MappingProxyType(dict(STATES))

ZONES: tuple[tuple[int, str], ...] = (
    (1, "Zon Utara 1"),
    (2, "Zon Utara 2"),
    (3, "Zon Tengah 1"),
    (4, "Zon Tengah 2"),
    (5, "Zon Selatan 1"),
    (6, "Zon Selatan 2"),
    (7, "Zon Timur 1"),
    (8, "Zon Timur 2"),
    (9, "Zon Sabah 1"),
    (10, "Zon Sabah 2"),
    (11, "Zon Sarawak"),
)

ZONE_STATES: tuple[tuple[int, int], ...] = (
    (1, 8),
    (1, 2),
    (1, 7),
    (2, 9),
    (2, 7),
    (2, 2),
    (3, 12),
    (3, 14),
    (3, 16),
    (4, 5),
    (4, 4),
    (5, 1),
    (6, 1),
    (7, 6),
    (8, 13),
    (8, 3),
    (9, 10),
    (10, 10),
    (10, 15),
    (11, 11),
)
"""(zoneId, stateId): the SPOC doc's "States Covered" column. A state split between two zones
(Kedah, Perak, Johor, Sabah) appears once per zone; the first four rows are the reference doc's
sample; Labuan goes with Sabah 2 and Putrajaya with Tengah 1."""


def _spoc_codes() -> tuple[tuple[int, int, str], ...]:
    """(spocId, zoneId, spocCode) following the documented prefix pattern, 162 in all.

    Ids count up from 5 in pattern order, which reproduces the sample (A1 = 5, A2 = 6, B1 = 28).
    Zone pairs sharing a prefix (J: 4-5, S: 6-7, Q: 8-9) split its numbers in two halves.
    """
    plan: list[tuple[str, int, tuple[int, ...]]] = [
        ("A", 23, (1,)),
        ("B", 11, (2,)),
        ("N", 3, (2,)),
        ("M", 3, (2,)),
        ("C", 9, (3,)),
        ("J", 43, (4, 5)),
        ("S", 29, (6, 7)),
        ("Q", 32, (8, 9)),
        ("K", 3, (10,)),
        ("P", 1, (10,)),
        ("T", 3, (11,)),
        ("D", 2, (11,)),
    ]
    rows: list[tuple[int, int, str]] = []
    for prefix, count, zones in plan:
        half = (count + 1) // 2
        for number in range(1, count + 1):
            zone = zones[0] if len(zones) == 1 or number <= half else zones[1]
            rows.append((len(rows) + 5, zone, f"{prefix}{number}"))
    return tuple(rows)


SPOCS = _spoc_codes()

_DISTRICTS_BY_STATE: tuple[tuple[int, str], ...] = (
    (1, "BATU PAHAT|JOHOR BAHRU|KLUANG|KOTA TINGGI|KULAI|MERSING|MUAR|PONTIAN|SEGAMAT|TANGKAK"),
    (
        2,
        "BALING|BANDAR BAHARU|KOTA SETAR|KUALA MUDA|KUBANG PASU|KULIM|LANGKAWI|PADANG TERAP"
        "|PENDANG|POKOK SENA|SIK|YAN",
    ),
    (
        3,
        "BACHOK|GUA MUSANG|JELI|KOTA BHARU|KUALA KRAI|MACHANG|PASIR MAS|PASIR PUTEH"
        "|TANAH MERAH|TUMPAT|LOJING",
    ),
    (4, "ALOR GAJAH|JASIN|MELAKA TENGAH"),
    (5, "JELEBU|JEMPOL|KUALA PILAH|PORT DICKSON|REMBAU|SEREMBAN|TAMPIN"),
    (
        6,
        "BENTONG|BERA|CAMERON HIGHLANDS|JERANTUT|KUANTAN|KUALA LIPIS|MARAN|PEKAN|RAUB"
        "|ROMPIN|TEMERLOH",
    ),
    (
        7,
        "BAGAN DATUK|BATANG PADANG|HILIR PERAK|HULU PERAK|KAMPAR|KERIAN|KINTA|KUALA KANGSAR"
        "|LARUT MATANG DAN SELAMA|MANJUNG|MUALLIM|PERAK TENGAH",
    ),
    (8, "KANGAR|ARAU|PADANG BESAR"),
    (9, "SEBERANG PERAI UTARA|SEBERANG PERAI TENGAH|SEBERANG PERAI SELATAN|TIMUR LAUT|BARAT DAYA"),
    (
        10,
        "BEAUFORT|BELURAN|KENINGAU|KINABATANGAN|KOTA BELUD|KOTA KINABALU|KOTA MARUDU"
        "|KUALA PENYU|KUDAT|KUNAK|LAHAD DATU|NABAWAN|PAPAR|PENAMPANG|PITAS|PUTATAN|RANAU"
        "|SANDAKAN|SEMPORNA|SIPITANG|TAMBUNAN|TAWAU|TELUPID|TENOM|TONGOD|TUARAN|KALABAKAN",
    ),
    (
        11,
        "KUCHING|BAU|LUNDU|SAMARAHAN|ASAJAYA|SIMUNJAN|SERIAN|TEBEDU|SRI AMAN|LUBOK ANTU"
        "|BETONG|SARATOK|SARIKEI|MERADONG|JULAU|PAKAN|SIBU|KANOWIT|SELANGAU|MUKAH|DALAT|DARO"
        "|MATU|TANJUNG MANIS|BINTULU|TATAU|SEBAUH|KAPIT|SONG|BELAGA|MIRI|MARUDI|SUBIS|BELURU"
        "|TELANG USAN|LIMBANG|LAWAS",
    ),
    (
        12,
        "GOMBAK|HULU LANGAT|HULU SELANGOR|KLANG|KUALA LANGAT|KUALA SELANGOR|PETALING"
        "|SABAK BERNAM|SEPANG",
    ),
    (
        13,
        "BESUT|DUNGUN|HULU TERENGGANU|KEMAMAN|KUALA NERUS|KUALA TERENGGANU|MARANG|SETIU",
    ),
    (14, "KUALA LUMPUR"),
    (15, "LABUAN"),
    (16, "PUTRAJAYA"),
)

DAERAH: tuple[tuple[int, str, int], ...] = tuple(
    (index + 1, name, state_id)
    for index, (name, state_id) in enumerate(
        (name, state_id) for state_id, names in _DISTRICTS_BY_STATE for name in names.split("|")
    )
)
"""(daerahId, daerah, stateId): real district names, numbered state by state (4 = KOTA TINGGI,
Johor, as in the OSH sample)."""

STATE_BOXES: MappingProxyType[int, tuple[float, float, float, float]] = MappingProxyType(
    {
        1: (1.60, 2.50, 103.00, 103.90),
        2: (5.50, 6.30, 100.45, 100.90),
        3: (4.90, 5.90, 101.60, 102.30),
        4: (2.20, 2.40, 102.20, 102.40),
        5: (2.60, 3.00, 101.90, 102.40),
        6: (3.20, 4.20, 102.00, 103.20),
        7: (4.00, 5.20, 100.70, 101.30),
        8: (6.45, 6.60, 100.18, 100.30),
        9: (5.20, 5.50, 100.42, 100.52),
        10: (4.80, 6.00, 116.50, 118.00),
        11: (2.00, 3.00, 111.30, 113.00),
        12: (2.90, 3.60, 101.20, 101.55),
        13: (4.40, 5.40, 102.70, 103.20),
        14: (3.05, 3.24, 101.62, 101.75),
        15: (5.25, 5.33, 115.20, 115.26),
        16: (2.90, 2.97, 101.67, 101.72),
    }
)
"""(lat_min, lat_max, long_min, long_max) of a box inside each state, for plausible GPS."""

CERTIFICATION_BODIES: tuple[tuple[int, str, str], ...] = tuple(
    (index + 1, f"CB{index + 1:03d}", name)
    for index, name in enumerate(
        (
            "SIRIM QAS International Sdn Bhd",
            "SGS (Malaysia) Sdn Bhd",
            "BSI Services Malaysia Sdn Bhd",
            "Bureau Veritas Certification (Malaysia) Sdn Bhd",
            "Control Union (Malaysia) Sdn Bhd",
            "TUV NORD (Malaysia) Sdn Bhd",
            "Intertek Certification International Sdn Bhd",
            "DQS Certification Malaysia Sdn Bhd",
            "Global Gateway Certifications Sdn Bhd",
            "Prima Certification (M) Sdn Bhd",
            "DNV Business Assurance Malaysia Sdn Bhd",
            "LRQA (Malaysia) Sdn Bhd",
            "TUV SUD (Malaysia) Sdn Bhd",
            "Mutuagung Lestari Malaysia Sdn Bhd",
            "PCI Certification Sdn Bhd",
            "Ceres Certification Asia Sdn Bhd",
            "AJA Registrars (Malaysia) Sdn Bhd",
            "Moody International Certification (M) Sdn Bhd",
            "Kiwa Malaysia Sdn Bhd",
            "UCSI Certification Services Sdn Bhd",
            "Perkhidmatan Persijilan Mampan Sdn Bhd",
            "ISOCert Malaysia Sdn Bhd",
            "Integrated Standards Certification Sdn Bhd",
            "Veritas Agro Certification Sdn Bhd",
            "Asia Pacific Certification Sdn Bhd",
            "Borneo Certification Services Sdn Bhd",
            "Green Palm Audit Sdn Bhd",
            "Cert Asia Assessment Sdn Bhd",
            "MSPO Audit Services Sdn Bhd",
            "Tropical Agri Certification Sdn Bhd",
        )
    )
)

AUDIT_SCOPES: tuple[tuple[int, str], ...] = tuple(
    enumerate(
        (
            "MS 2530-2-1: Independent Smallholders",
            "MS 2530-2-2: Organised Smallholders",
            "MS 2530-3-1: Oil Palm Plantations",
            "MS 2530-4-1: Palm Oil Mills",
            "MS 2530-4-2: Palm Kernel Crushers",
            "MS 2530-4-3: Refineries",
            "MS 2530-4-4: Oleochemical Plants",
            "MS 2530-4-5: Biodiesel Plants",
            "MSPO Supply Chain Certification Standard",
            "MSPO Trace Dealers",
        ),
        start=1,
    )
)

AUDIT_TYPES: tuple[tuple[int, str], ...] = tuple(
    enumerate(
        (
            "Initial Audit",
            "Surveillance Audit",
            "Recertification Audit",
            "Special Audit",
            "Extension to Scope Audit",
        ),
        start=1,
    )
)

ENTITY_TYPES: tuple[tuple[int, str, str], ...] = tuple(
    (index + 1, code, name)
    for index, (code, name) in enumerate(
        (
            ("ISH", "Independent Smallholder"),
            ("OSH", "Organised Smallholder"),
            ("GM", "Group Manager"),
            ("EST", "Estate"),
            ("MILL", "Palm Oil Mill"),
            ("KCP", "Kernel Crushing Plant"),
            ("REF", "Refinery"),
            ("OLEO", "Oleochemical Plant"),
            ("BIO", "Biodiesel Plant"),
            ("DLR", "Dealer"),
        )
    )
)


def _group_managers() -> tuple[tuple[int, str, str, int], ...]:
    """(groupManagerId, gmCode, groupManagerName, stateId): 50 co-operatives and companies."""
    kinds = ("KOPERASI PEKEBUN KECIL", "PERSATUAN PEKEBUN KECIL", "SYARIKAT PERLADANGAN")
    suffixes = ("BERHAD", "BERHAD", "SDN BHD")
    palm_states = (1, 2, 3, 5, 6, 7, 10, 11, 12, 13)
    rows = []
    for index in range(50):
        state_id = palm_states[index % len(palm_states)]
        town = DISTRICTS_OF_STATE[state_id][index // len(palm_states)]
        kind = index % len(kinds)
        rows.append(
            (index + 1, f"GM{index + 1:03d}", f"{kinds[kind]} {town} {suffixes[kind]}", state_id)
        )
    return tuple(rows)


DISTRICTS_OF_STATE: MappingProxyType[int, tuple[str, ...]] = MappingProxyType(
    {state_id: tuple(names.split("|")) for state_id, names in _DISTRICTS_BY_STATE}
)
GROUP_MANAGERS = _group_managers()

COUNTRIES: tuple[tuple[int, str, str], ...] = tuple(
    (index + 1, code, name)
    for index, (code, name) in enumerate(
        (
            ("AD", "Andorra"),
            ("AE", "United Arab Emirates"),
            ("AF", "Afghanistan"),
            ("AG", "Antigua & Barbuda"),
            ("AI", "Anguilla"),
            ("AL", "Albania"),
            ("AM", "Armenia"),
            ("AO", "Angola"),
            ("AQ", "Antarctica"),
            ("AR", "Argentina"),
            ("AS", "Samoa (American)"),
            ("AT", "Austria"),
            ("AU", "Australia"),
            ("AW", "Aruba"),
            ("AX", "Åland Islands"),
            ("AZ", "Azerbaijan"),
            ("BA", "Bosnia & Herzegovina"),
            ("BB", "Barbados"),
            ("BD", "Bangladesh"),
            ("BE", "Belgium"),
            ("BF", "Burkina Faso"),
            ("BG", "Bulgaria"),
            ("BH", "Bahrain"),
            ("BI", "Burundi"),
            ("BJ", "Benin"),
            ("BL", "St Barthelemy"),
            ("BM", "Bermuda"),
            ("BN", "Brunei"),
            ("BO", "Bolivia"),
            ("BQ", "Caribbean NL"),
            ("BR", "Brazil"),
            ("BS", "Bahamas"),
            ("BT", "Bhutan"),
            ("BV", "Bouvet Island"),
            ("BW", "Botswana"),
            ("BY", "Belarus"),
            ("BZ", "Belize"),
            ("CA", "Canada"),
            ("CC", "Cocos (Keeling) Islands"),
            ("CD", "Congo (Dem. Rep.)"),
            ("CF", "Central African Rep."),
            ("CG", "Congo (Rep.)"),
            ("CH", "Switzerland"),
            ("CI", "Côte d'Ivoire"),
            ("CK", "Cook Islands"),
            ("CL", "Chile"),
            ("CM", "Cameroon"),
            ("CN", "China"),
            ("CO", "Colombia"),
            ("CR", "Costa Rica"),
            ("CU", "Cuba"),
            ("CV", "Cape Verde"),
            ("CW", "Curaçao"),
            ("CX", "Christmas Island"),
            ("CY", "Cyprus"),
            ("CZ", "Czech Republic"),
            ("DE", "Germany"),
            ("DJ", "Djibouti"),
            ("DK", "Denmark"),
            ("DM", "Dominica"),
            ("DO", "Dominican Republic"),
            ("DZ", "Algeria"),
            ("EC", "Ecuador"),
            ("EE", "Estonia"),
            ("EG", "Egypt"),
            ("EH", "Western Sahara"),
            ("ER", "Eritrea"),
            ("ES", "Spain"),
            ("ET", "Ethiopia"),
            ("FI", "Finland"),
            ("FJ", "Fiji"),
            ("FK", "Falkland Islands"),
            ("FM", "Micronesia"),
            ("FO", "Faroe Islands"),
            ("FR", "France"),
            ("GA", "Gabon"),
            ("GB", "Britain (UK)"),
            ("GD", "Grenada"),
            ("GE", "Georgia"),
            ("GF", "French Guiana"),
            ("GG", "Guernsey"),
            ("GH", "Ghana"),
            ("GI", "Gibraltar"),
            ("GL", "Greenland"),
            ("GM", "Gambia"),
            ("GN", "Guinea"),
            ("GP", "Guadeloupe"),
            ("GQ", "Equatorial Guinea"),
            ("GR", "Greece"),
            ("GS", "South Georgia & the South Sandwich Islands"),
            ("GT", "Guatemala"),
            ("GU", "Guam"),
            ("GW", "Guinea-Bissau"),
            ("GY", "Guyana"),
            ("HK", "Hong Kong"),
            ("HM", "Heard Island & McDonald Islands"),
            ("HN", "Honduras"),
            ("HR", "Croatia"),
            ("HT", "Haiti"),
            ("HU", "Hungary"),
            ("ID", "Indonesia"),
            ("IE", "Ireland"),
            ("IL", "Israel"),
            ("IM", "Isle of Man"),
            ("IN", "India"),
            ("IO", "British Indian Ocean Territory"),
            ("IQ", "Iraq"),
            ("IR", "Iran"),
            ("IS", "Iceland"),
            ("IT", "Italy"),
            ("JE", "Jersey"),
            ("JM", "Jamaica"),
            ("JO", "Jordan"),
            ("JP", "Japan"),
            ("KE", "Kenya"),
            ("KG", "Kyrgyzstan"),
            ("KH", "Cambodia"),
            ("KI", "Kiribati"),
            ("KM", "Comoros"),
            ("KN", "St Kitts & Nevis"),
            ("KP", "Korea (North)"),
            ("KR", "Korea (South)"),
            ("KW", "Kuwait"),
            ("KY", "Cayman Islands"),
            ("KZ", "Kazakhstan"),
            ("LA", "Laos"),
            ("LB", "Lebanon"),
            ("LC", "St Lucia"),
            ("LI", "Liechtenstein"),
            ("LK", "Sri Lanka"),
            ("LR", "Liberia"),
            ("LS", "Lesotho"),
            ("LT", "Lithuania"),
            ("LU", "Luxembourg"),
            ("LV", "Latvia"),
            ("LY", "Libya"),
            ("MA", "Morocco"),
            ("MC", "Monaco"),
            ("MD", "Moldova"),
            ("ME", "Montenegro"),
            ("MF", "St Martin (French)"),
            ("MG", "Madagascar"),
            ("MH", "Marshall Islands"),
            ("MK", "North Macedonia"),
            ("ML", "Mali"),
            ("MM", "Myanmar (Burma)"),
            ("MN", "Mongolia"),
            ("MO", "Macau"),
            ("MP", "Northern Mariana Islands"),
            ("MQ", "Martinique"),
            ("MR", "Mauritania"),
            ("MS", "Montserrat"),
            ("MT", "Malta"),
            ("MU", "Mauritius"),
            ("MV", "Maldives"),
            ("MW", "Malawi"),
            ("MX", "Mexico"),
            ("MY", "Malaysia"),
            ("MZ", "Mozambique"),
            ("NA", "Namibia"),
            ("NC", "New Caledonia"),
            ("NE", "Niger"),
            ("NF", "Norfolk Island"),
            ("NG", "Nigeria"),
            ("NI", "Nicaragua"),
            ("NL", "Netherlands"),
            ("NO", "Norway"),
            ("NP", "Nepal"),
            ("NR", "Nauru"),
            ("NU", "Niue"),
            ("NZ", "New Zealand"),
            ("OM", "Oman"),
            ("PA", "Panama"),
            ("PE", "Peru"),
            ("PF", "French Polynesia"),
            ("PG", "Papua New Guinea"),
            ("PH", "Philippines"),
            ("PK", "Pakistan"),
            ("PL", "Poland"),
            ("PM", "St Pierre & Miquelon"),
            ("PN", "Pitcairn"),
            ("PR", "Puerto Rico"),
            ("PS", "Palestine"),
            ("PT", "Portugal"),
            ("PW", "Palau"),
            ("PY", "Paraguay"),
            ("QA", "Qatar"),
            ("RE", "Réunion"),
            ("RO", "Romania"),
            ("RS", "Serbia"),
            ("RU", "Russia"),
            ("RW", "Rwanda"),
            ("SA", "Saudi Arabia"),
            ("SB", "Solomon Islands"),
            ("SC", "Seychelles"),
            ("SD", "Sudan"),
            ("SE", "Sweden"),
            ("SG", "Singapore"),
            ("SH", "St Helena"),
            ("SI", "Slovenia"),
            ("SJ", "Svalbard & Jan Mayen"),
            ("SK", "Slovakia"),
            ("SL", "Sierra Leone"),
            ("SM", "San Marino"),
            ("SN", "Senegal"),
            ("SO", "Somalia"),
            ("SR", "Suriname"),
            ("SS", "South Sudan"),
            ("ST", "Sao Tome & Principe"),
            ("SV", "El Salvador"),
            ("SX", "St Maarten (Dutch)"),
            ("SY", "Syria"),
            ("SZ", "Eswatini (Swaziland)"),
            ("TC", "Turks & Caicos Is"),
            ("TD", "Chad"),
            ("TF", "French S. Terr."),
            ("TG", "Togo"),
            ("TH", "Thailand"),
            ("TJ", "Tajikistan"),
            ("TK", "Tokelau"),
            ("TL", "East Timor"),
            ("TM", "Turkmenistan"),
            ("TN", "Tunisia"),
            ("TO", "Tonga"),
            ("TR", "Turkey"),
            ("TT", "Trinidad & Tobago"),
            ("TV", "Tuvalu"),
            ("TW", "Taiwan"),
            ("TZ", "Tanzania"),
            ("UA", "Ukraine"),
            ("UG", "Uganda"),
            ("UM", "US minor outlying islands"),
            ("US", "United States"),
            ("UY", "Uruguay"),
            ("UZ", "Uzbekistan"),
            ("VA", "Vatican City"),
            ("VC", "St Vincent"),
            ("VE", "Venezuela"),
            ("VG", "Virgin Islands (UK)"),
            ("VI", "Virgin Islands (US)"),
            ("VN", "Vietnam"),
            ("VU", "Vanuatu"),
            ("WF", "Wallis & Futuna"),
            ("WS", "Samoa (western)"),
            ("YE", "Yemen"),
            ("YT", "Mayotte"),
            ("ZA", "South Africa"),
            ("ZM", "Zambia"),
            ("ZW", "Zimbabwe"),
        )
    )
)
"""(countryId, countryCode, country): ISO 3166 codes and names."""


REFERENCE_ROWS: Mapping[str, Sequence[tuple[Any, ...]]] = MappingProxyType(
    {
        "states": STATES,
        "countries": COUNTRIES,
        "cb": CERTIFICATION_BODIES,
        "audit_scopes": AUDIT_SCOPES,
        "audit_types": AUDIT_TYPES,
        "entity_types": ENTITY_TYPES,
        "groupmanagers": GROUP_MANAGERS,
        "zones": ZONES,
        "zone_state": tuple((z, s, STATE_NAMES[s]) for z, s in ZONE_STATES),
        "spocs": SPOCS,
        "daerah": DAERAH,
    }
)
"""The rows each reference endpoint serves, in the catalogue's field order: the emulator's one
profile per reference table (a new reference endpoint needs its rows here)."""
