"""What a column can be imported as, and a first guess from its header.

A mapping is a list with one target per column: a field name from TARGETS[kind], "" to
ignore the column, or "custom" to keep it in the record's custom fields under its header."""

import re

from rapport.core.text import fold

IGNORE = ""
CUSTOM = "custom"

# target → (label, may appear on several columns)
PEOPLE_TARGETS: dict[str, tuple[str, bool]] = {
    "first_name": ("First name", False),
    "last_name": ("Last name", False),
    "full_name": ("Full name (split into first and last)", False),
    "email": ("Email", True),
    "phone": ("Phone", True),
    "title": ("Job title", False),
    "organisation": ("Organisation", False),
    "x": ("X / Twitter", True),
    "linkedin": ("LinkedIn", True),
    "mastodon": ("Mastodon", True),
    "bluesky": ("Bluesky", True),
    "website": ("Website", True),
    "tags": ("Tags (comma-separated)", True),
    "street": ("Street", False),
    "city": ("City", False),
    "region": ("Region / state", False),
    "postcode": ("Postcode", False),
    "country": ("Country", False),
    "bio": ("Notes / bio", False),
    "language": ("Language", False),
}
ORG_TARGETS: dict[str, tuple[str, bool]] = {
    "name": ("Name", False),
    "website": ("Website", False),
    "domain": ("Email domain", True),
    "phone": ("Phone", False),
    "industry": ("Industry", False),
    "employees": ("Employees", False),
    "description": ("Description", False),
    "tags": ("Tags (comma-separated)", True),
    "street": ("Street", False),
    "city": ("City", False),
    "region": ("Region / state", False),
    "postcode": ("Postcode", False),
    "country": ("Country", False),
}
DEAL_TARGETS: dict[str, tuple[str, bool]] = {
    "name": ("Deal name", False),
    "amount": ("Amount", False),
    "currency": ("Currency", False),
    "stage": ("Stage", False),
    "close_date": ("Expected close date", False),
    "organisation": ("Organisation", False),
    "owner_email": ("Owner email", False),
    "description": ("Description", False),
}
TARGETS = {"people": PEOPLE_TARGETS, "organisations": ORG_TARGETS, "deals": DEAL_TARGETS}
# Deals have no custom-field store.
ALLOWS_CUSTOM = {"people": True, "organisations": True, "deals": False}

# Headers are compared folded and without punctuation: "E-Mail Address" → "emailaddress".
_SYNONYMS: dict[str, dict[str, list[str]]] = {
    "people": {
        "first_name": [
            "firstname",
            "first",
            "givenname",
            "forename",
            "vorname",
            "prenom",
            "nombre",
            "nome",
            "voornaam",
            "fornavn",
            "förnamn",
            "fornamn",
            "imie",
            "fname",
        ],
        "last_name": [
            "lastname",
            "last",
            "surname",
            "familyname",
            "nachname",
            "nom",
            "nomdefamille",
            "apellido",
            "apellidos",
            "cognome",
            "achternaam",
            "efternavn",
            "efternamn",
            "nazwisko",
            "lname",
        ],
        "full_name": [
            "name",
            "fullname",
            "contact",
            "contactname",
            "person",
            "displayname",
            "vollstandigername",
            "nomcomplet",
            "nombrecompleto",
            "naam",
        ],
        "email": [
            "email",
            "mail",
            "emailaddress",
            "mailaddress",
            "emailadresse",
            "courriel",
            "adressemail",
            "adresseemail",
            "correo",
            "correoelectronico",
            "workemail",
            "businessemail",
            "primaryemail",
            "email1",
            "email2",
            "personalemail",
        ],
        "phone": [
            "phone",
            "telephone",
            "tel",
            "telefon",
            "telefono",
            "telefoon",
            "mobile",
            "mobil",
            "cell",
            "cellphone",
            "mobilephone",
            "handy",
            "portable",
            "phonenumber",
            "workphone",
            "businessphone",
            "homephone",
            "mobilenumber",
            "phone1",
            "phone2",
            "numero",
        ],
        "title": [
            "title",
            "jobtitle",
            "position",
            "role",
            "function",
            "funktion",
            "poste",
            "fonction",
            "cargo",
            "berufsbezeichnung",
            "designation",
        ],
        "organisation": [
            "company",
            "organisation",
            "organization",
            "account",
            "accountname",
            "companyname",
            "employer",
            "firma",
            "unternehmen",
            "societe",
            "entreprise",
            "empresa",
            "azienda",
            "org",
        ],
        "x": ["twitter", "x", "twitterhandle", "xhandle", "xtwitter", "twitterx"],
        "linkedin": ["linkedin", "linkedinurl", "linkedinprofile"],
        "mastodon": ["mastodon", "fediverse"],
        "bluesky": ["bluesky", "bsky"],
        "website": ["website", "web", "url", "homepage", "site", "siteweb", "webseite"],
        "tags": ["tags", "tag", "labels", "label", "groups", "categories", "schlagworte"],
        "street": ["street", "address", "streetaddress", "strasse", "adresse", "rue", "calle"],
        "city": ["city", "town", "stadt", "ort", "ville", "ciudad", "citta", "plaats"],
        "region": ["region", "state", "province", "county", "bundesland"],
        "postcode": ["postcode", "zip", "zipcode", "postalcode", "plz", "postleitzahl", "codepostal", "cp"],
        "country": ["country", "land", "pays", "pais", "paese", "countrycode"],
        "bio": ["notes", "note", "bio", "description", "comments", "comment", "notizen", "remarques"],
        "language": ["language", "lang", "sprache", "langue", "idioma"],
    },
    "organisations": {
        "name": [
            "name",
            "company",
            "companyname",
            "organisation",
            "organization",
            "account",
            "accountname",
            "firma",
            "unternehmen",
            "societe",
            "entreprise",
            "empresa",
            "org",
        ],
        "website": ["website", "web", "url", "homepage", "site", "webseite", "siteweb"],
        "domain": ["domain", "emaildomain", "domains"],
        "phone": ["phone", "telephone", "tel", "telefon", "telefono", "phonenumber"],
        "industry": ["industry", "sector", "branche", "secteur", "industria"],
        "employees": [
            "employees",
            "employeecount",
            "headcount",
            "size",
            "mitarbeiter",
            "staff",
            "numberofemployees",
        ],
        "description": ["description", "notes", "about", "beschreibung", "comments"],
        "tags": ["tags", "tag", "labels", "categories"],
        "street": ["street", "address", "streetaddress", "strasse", "adresse", "rue"],
        "city": ["city", "town", "stadt", "ort", "ville", "ciudad"],
        "region": ["region", "state", "province", "county", "bundesland"],
        "postcode": ["postcode", "zip", "zipcode", "postalcode", "plz", "codepostal"],
        "country": ["country", "land", "pays", "pais"],
    },
    "deals": {
        "name": ["name", "dealname", "deal", "opportunity", "opportunityname", "title", "dealtitle"],
        "amount": ["amount", "value", "dealvalue", "betrag", "montant", "importe", "revenue", "price"],
        "currency": ["currency", "curr", "wahrung", "devise", "moneda"],
        "stage": ["stage", "dealstage", "phase", "status", "pipelinestage", "etape"],
        "close_date": [
            "closedate",
            "expectedclose",
            "expectedclosedate",
            "closingdate",
            "close",
            "abschlussdatum",
            "datedecloture",
        ],
        "organisation": [
            "organisation",
            "organization",
            "company",
            "account",
            "accountname",
            "companyname",
            "firma",
        ],
        "owner_email": ["owneremail", "owner", "dealowner", "salesrep", "assignedto", "rep"],
        "description": ["description", "notes", "comments"],
    },
}
_LOOKUP = {
    kind: {syn: target for target, syns in table.items() for syn in syns} for kind, table in _SYNONYMS.items()
}
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def header_key(header: str) -> str:
    return _NON_ALNUM.sub("", fold(header))


def guess_mapping(kind: str, headers: list[str]) -> list[str]:
    """One target per header. Single-use targets go to the first column that claims them;
    unknown headers become custom fields (or are ignored for deals)."""
    lookup = _LOOKUP[kind]
    targets = TARGETS[kind]
    used: set[str] = set()
    result = []
    for header in headers:
        target = lookup.get(header_key(header), "")
        if not target:
            key = header_key(header)
            # "Work e-mail", "Mobile phone (private)": match on a known word inside the header.
            for syn, candidate in sorted(lookup.items(), key=lambda kv: -len(kv[0])):
                if len(syn) >= 4 and syn in key:
                    target = candidate
                    break
        if target and (targets[target][1] or target not in used):
            used.add(target)
            result.append(target)
        else:
            result.append(CUSTOM if ALLOWS_CUSTOM[kind] and header.strip() else IGNORE)
    # A "Name" column next to first/last columns is not a full name.
    if "full_name" in result and ("first_name" in result or "last_name" in result):
        result = [CUSTOM if t == "full_name" else t for t in result]
    return result


def validate_mapping(kind: str, mapping: list[str], n_columns: int) -> dict[str, list[str]]:
    """Field errors for a mapping chosen by the user (empty when it is fine)."""
    targets = TARGETS[kind]
    errors: list[str] = []
    if len(mapping) != n_columns:
        errors.append(f"Give one choice per column ({n_columns}).")
    seen: set[str] = set()
    for target in mapping:
        if target in (IGNORE,):
            continue
        if target == CUSTOM:
            if not ALLOWS_CUSTOM[kind]:
                errors.append("Deals have no custom fields; ignore the column instead.")
            continue
        if target not in targets:
            errors.append(f"Unknown field {target[:40]!r}.")
            continue
        if target in seen and not targets[target][1]:
            errors.append(f"“{targets[target][0]}” is chosen for more than one column.")
        seen.add(target)
    required = {
        "people": (
            {
                "first_name",
                "last_name",
                "full_name",
                "email",
                "phone",
                "x",
                "linkedin",
                "mastodon",
                "bluesky",
            },
            "a name, email, phone or handle column",
        ),
        "organisations": ({"name"}, "the name column"),
        "deals": ({"name"}, "the deal name column"),
    }[kind]
    if not seen & required[0]:
        errors.append(f"Choose {required[1]}.")
    return {"mapping": errors} if errors else {}


def split_full_name(value: str) -> tuple[str, str]:
    """'Smith, Jane' → (Jane, Smith); 'Ludwig van Beethoven' → (Ludwig, van Beethoven)."""
    value = " ".join(value.split())
    if not value:
        return "", ""
    if "," in value:
        last, _, first = value.partition(",")
        return first.strip(), last.strip()
    parts = value.split(" ")
    if len(parts) == 1:
        return parts[0], ""
    i = len(parts) - 1
    while i > 1 and parts[i - 1].lower() in _PARTICLES:
        i -= 1
    return " ".join(parts[:i]), " ".join(parts[i:])


_PARTICLES = {
    "van",
    "von",
    "de",
    "der",
    "den",
    "da",
    "di",
    "du",
    "del",
    "della",
    "le",
    "la",
    "ten",
    "ter",
    "zu",
    "dos",
    "das",
    "bin",
    "al",
}
