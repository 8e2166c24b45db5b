"""Build the scenario library: one realistic FHIR R4 bundle per clinical scenario.

    python examples/build_examples.py            # write bundles/ and requests/
    python examples/build_examples.py --check    # replay each and diff against expected/
    python examples/build_examples.py --update   # show the diff, then accept it as expected
    python examples/build_examples.py --large 10000 big.json   # a chart with years of results

Every bundle is pinned to the evaluation date 2026-11-24 (Bundle.timestamp); replay with
`cds replay examples/bundles/<id>.json --as-of 2026-11-24` to see exactly the expected cards.
Expected cards (examples/expected/<id>.json) are reviewed by a person: --update prints what
changed before it writes, never silently.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BASE = "https://ehr.example.org/fhir"


def _day(days: float) -> str:
    return (AS_OF - timedelta(days=days)).isoformat().replace("+00:00", "Z")


@dataclass
class Chart:
    """A patient's record, written the way a clinician would read it."""

    pid: str
    birth: str
    gender: str
    name: tuple[str, str]
    resources: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subject = {"reference": f"Patient/{self.pid}"}
        self.resources.append({
            "resourceType": "Patient", "id": self.pid, "gender": self.gender,
            "birthDate": self.birth, "name": [{"family": self.name[1], "given": [self.name[0]]}],
        })
        self.resources.append({
            "resourceType": "Encounter", "id": f"{self.pid}-enc", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB", "display": "ambulatory"},
            "subject": self.subject, "period": {"start": _day(0.02)},
        })

    def _id(self, kind: str) -> str:
        return f"{self.pid}-{kind}-{len(self.resources)}"

    def condition(self, system: str, code: str, display: str, days: float = 1,
                  clinical: str = "active", verification: str = "confirmed",
                  category: str = "encounter-diagnosis",
                  site: list[tuple[str, str]] | None = None) -> Chart:
        """`site`: SNOMED CT (code, display) codings of one bodySite (a structure and/or a
        laterality qualifier)."""
        self.resources.append({
            "resourceType": "Condition", "id": self._id("cond"),
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": clinical}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": verification}]},
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                "code": category}]}],
            "code": {"coding": [{"system": system, "code": code, "display": display}],
                     "text": display.split(" (")[0]},
            "subject": self.subject,
            "onsetDateTime": _day(days),
            "recordedDate": _day(min(days, 0.05)),
            **({"abatementDateTime": _day(max(days - 30, 0.1))} if clinical == "resolved"
               else {}),
            **({"bodySite": [{"coding": [{"system": SCT, "code": c, "display": d}
                                         for c, d in site]}]} if site else {}),
        })
        return self

    def vital(self, code: str, display: str, value: float, unit: str, hours: float = 1,
              category: str = "vital-signs", status: str = "final",
              ucum: str | None = None) -> Chart:
        """`unit` as displayed; `ucum` the UCUM code when it differs (mEq/L is meq/L)."""
        self.resources.append({
            "resourceType": "Observation", "id": self._id("obs"), "status": status,
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}],
                     "text": display},
            "subject": self.subject, "effectiveDateTime": _day(hours / 24),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM,
                              "code": ucum or unit},
        })
        return self

    def lab(self, code: str, display: str, value: float, unit: str, hours: float = 2,
            **kw: Any) -> Chart:
        return self.vital(code, display, value, unit, hours, category="laboratory", **kw)

    def exam(self, code: str, display: str, present: bool, hours: float = 1) -> Chart:
        """A sign examined at the bedside and recorded as present or absent."""
        self.resources.append({
            "resourceType": "Observation", "id": self._id("exam"), "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "exam"}]}],
            "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
            "subject": self.subject, "effectiveDateTime": _day(hours / 24),
            "valueBoolean": present,
        })
        return self

    def coded(self, code: str, display: str, answer: tuple[str, str], days: float = 1,
              category: str = "social-history") -> Chart:
        """An Observation answered with a SNOMED CT code (e.g. pregnancy status)."""
        self.resources.append({
            "resourceType": "Observation", "id": self._id("obs"), "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": self.subject, "effectiveDateTime": _day(days),
            "valueCodeableConcept": {"coding": [{"system": SCT, "code": answer[0],
                                                 "display": answer[1]}]},
        })
        return self

    def procedure(self, code: str, display: str, days: float) -> Chart:
        self.resources.append({
            "resourceType": "Procedure", "id": self._id("proc"), "status": "completed",
            "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
            "subject": self.subject, "performedDateTime": _day(days),
        })
        return self

    def usual(self) -> Chart:
        """Unrelated history every real chart carries."""
        self.condition(SCT, "38341003", "Hypertensive disorder, systemic arterial (disorder)",
                       days=3000, category="problem-list-item")
        self.vital("8867-4", "Heart rate", 78, "/min")
        self.vital("8310-5", "Body temperature", 36.9, "Cel")
        self.vital("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", 98, "%")
        return self

    def bundle(self, scenario: str) -> dict[str, Any]:
        return {
            "resourceType": "Bundle", "id": scenario, "type": "collection",
            "timestamp": AS_OF.isoformat().replace("+00:00", "Z"),
            "entry": [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in self.resources],
        }


# ---------------------------------------------------------------- the scenarios

HR, TEMP, SPO2, PAIN = "8867-4", "8310-5", "59408-5", "72514-3"
PAIN_NAME = "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
DDIMER = ("48065-7", "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma")


def dvt_likely() -> Chart:
    return (Chart("dvt-likely", "1962-03-14", "female", ("Margaret", "Example")).usual()
            .condition(ICD, "C50.911",
                       "Malignant neoplasm of unspecified site of right female breast",
                       days=175, category="problem-list-item")
            .condition(SCT, "449614009", "Swelling of lower limb (finding)", days=2)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=3))


def dvt_likely_ddimer_positive() -> Chart:
    return (Chart("dvt-likely-ddimer-positive", "1958-07-02", "male", ("Peter", "Hale"))
            .usual()
            .procedure("609588000", "Total knee replacement (procedure)", days=21)
            .condition(SCT, "449614009", "Swelling of lower limb (finding)", days=2)
            .condition(SCT, "300954003", "Pain in calf (finding)", days=2)
            .lab(*DDIMER, 1.4, "ug/mL"))


def wells_low_ddimer_negative() -> Chart:
    """Every sign the chart can record is recorded absent; D-dimer negative."""
    return (Chart("wells-low-ddimer-negative", "1991-02-11", "female", ("Amira", "Khan"))
            .usual()
            .condition(SCT, "78514002", "Thigh pain (finding)", days=4)
            .exam("449614009", "Swelling of lower limb (finding)", False)
            .exam("102572006", "Edema of lower extremity (finding)", False)
            .exam("247348008", "Tenderness (finding)", False)
            .lab(*DDIMER, 0.32, "ug/mL"))


def possible_pe() -> Chart:
    return (Chart("possible-pe", "1970-09-30", "male", ("Tomas", "Novak"))
            .condition(SCT, "267036007", "Dyspnea (finding)", days=0.3)
            .condition(SCT, "29857009", "Chest pain (finding)", days=0.3)
            .condition(ICD, "Z86.718",
                       "Personal history of other venous thrombosis and embolism",
                       days=1200, category="problem-list-item")
            .condition(SCT, "78514002", "Thigh pain (finding)", days=4)
            .vital(HR, "Heart rate", 118, "/min")
            .vital(SPO2, "Oxygen saturation in Arterial blood by Pulse oximetry", 92, "%")
            .vital(TEMP, "Body temperature", 37.4, "Cel"))


def cauda_equina() -> Chart:
    return (Chart("cauda-equina", "1979-05-21", "female", ("Claire", "Dubois")).usual()
            .condition(ICD, "M54.41", "Lumbago with sciatica, right side", days=6)
            .condition(ICD, "M54.42", "Lumbago with sciatica, left side", days=3)
            .condition(SCT, "267064002", "Retention of urine (disorder)", days=1))


def infection() -> Chart:
    return (Chart("infection", "1966-12-03", "male", ("Dwayne", "Okafor"))
            .condition(SCT, "279039007", "Low back pain (finding)", days=10)
            .condition(SCT, "43724002", "Chill (finding)", days=2)
            .vital(TEMP, "Body temperature", 38.7, "Cel")
            .vital(HR, "Heart rate", 96, "/min")
            .lab("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", 86, "mg/L"))


def trauma_fall() -> Chart:
    return (Chart("trauma-fall", "1943-01-17", "female", ("Edith", "Marsh")).usual()
            .condition(SCT, "217082002", "Accidental fall (event)", days=2)
            .condition(SCT, "282145008", "Unable to walk (finding)", days=2)
            .vital(PAIN, PAIN_NAME, 8, "{score}"))


def cancer_history() -> Chart:
    return (Chart("cancer-history", "1950-10-08", "male", ("Graham", "Reid")).usual()
            .condition(ICD, "Z85.46", "Personal history of malignant neoplasm of prostate",
                       days=2000, category="problem-list-item")
            .condition(ICD, "R63.4", "Abnormal weight loss", days=40)
            .condition(SCT, "279039007", "Low back pain (finding)", days=20))


def hamstring_strain() -> Chart:
    return (Chart("hamstring-strain", "1998-04-25", "male", ("Kofi", "Mensah")).usual()
            .condition(ICD, "S76.311A", "Strain of muscle, fascia and tendon of the posterior "
                       "muscle group at thigh level, right thigh, initial encounter", days=1)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=1)
            .lab("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma",
                 640, "U/L"))


def cramps() -> Chart:
    return (Chart("cramps", "1955-06-09", "female", ("Rosa", "Ferreira")).usual()
            .condition(ICD, "R25.2", "Cramp and spasm", days=5)
            .condition(SCT, "34095006", "Dehydration (disorder)", days=5)
            .lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", 3.1, "mmol/L",
                 hours=30)
            .lab("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", 1.5, "mg/dL",
                 hours=30)
            .lab("2951-2", "Sodium [Moles/volume] in Serum or Plasma", 139, "mmol/L",
                 hours=30))


def hamstring_tendinopathy() -> Chart:
    """No code exists for proximal hamstring tendinopathy: the card says how to test."""
    return (Chart("hamstring-tendinopathy", "1984-08-14", "female", ("Lena", "Berg")).usual()
            .condition(SCT, "279043006", "Pain in buttock (finding)", days=60)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=60))


def ischial_bursitis() -> Chart:
    return (Chart("ischial-bursitis", "1961-11-29", "male", ("Hugh", "Tanner")).usual()
            .condition(ICD, "M70.71", "Other bursitis of hip, right hip", days=20)
            .condition(SCT, "279043006", "Pain in buttock (finding)", days=20))


def sciatica_disc() -> Chart:
    return (Chart("sciatica-disc", "1982-02-02", "male", ("Marco", "Bianchi")).usual()
            .condition(ICD, "M51.16",
                       "Intervertebral disc disorders with radiculopathy, lumbar region",
                       days=12)
            .condition(SCT, "279039007", "Low back pain (finding)", days=14)
            .condition(SCT, "309537005", "Numbness of lower limb (finding)", days=10))


def spinal_stenosis() -> Chart:
    return (Chart("spinal-stenosis", "1951-03-30", "female", ("Joan", "Price")).usual()
            .condition(ICD, "M48.062",
                       "Spinal stenosis, lumbar region with neurogenic claudication",
                       days=400, category="problem-list-item")
            .condition(SCT, "278860009", "Chronic low back pain (finding)", days=60))


def bone_spurs() -> Chart:
    return (Chart("bone-spurs", "1957-09-12", "male", ("Alan", "Pike")).usual()
            .condition(ICD, "M47.816",
                       "Spondylosis without myelopathy or radiculopathy, lumbar region",
                       days=900, category="problem-list-item"))


def piriformis() -> Chart:
    return (Chart("piriformis", "1989-12-01", "female", ("Nina", "Solberg")).usual()
            .condition(ICD, "G57.01", "Lesion of sciatic nerve, right lower limb", days=30)
            .condition(SCT, "279043006", "Pain in buttock (finding)", days=30))


def referred_lumbar() -> Chart:
    return (Chart("referred-lumbar", "1969-07-07", "male", ("Owen", "Hart")).usual()
            .condition(SCT, "279063004", "Lumbar facet joint pain (finding)", days=40)
            .condition(SCT, "279039007", "Low back pain (finding)", days=40))


def no_relevant_data() -> Chart:
    return Chart("no-relevant-data", "1975-04-04", "female", ("Ivy", "Lane")).usual()


def resolved_refuted_only() -> Chart:
    return (Chart("resolved-refuted-only", "1964-01-19", "male", ("Victor", "Hale")).usual()
            .condition(ICD, "M54.31", "Sciatica, right side", days=900, clinical="resolved")
            .condition(SCT, "128053003", "Deep venous thrombosis (disorder)", days=3,
                       verification="refuted")
            .condition(SCT, "267064002", "Retention of urine (disorder)", days=2,
                       verification="entered-in-error"))


def fever_without_pain() -> Chart:
    """A cold with fever: no thigh, leg or back complaint, so no infection card."""
    return (Chart("fever-without-pain", "1988-03-03", "female", ("Sara", "Lind"))
            .condition(SCT, "15805002", "Acute sinusitis (disorder)", days=3)
            .vital(TEMP, "Body temperature", 38.6, "Cel")
            .vital(HR, "Heart rate", 92, "/min"))


def cancer_in_remission() -> Chart:
    """Past prostate cancer on the problem list, seen for something else: no card."""
    return (Chart("cancer-in-remission", "1948-06-21", "male", ("Arthur", "Penn")).usual()
            .condition(ICD, "Z85.46", "Personal history of malignant neoplasm of prostate",
                       days=2000, category="problem-list-item"))


def only_patient() -> Chart:
    return Chart("only-patient", "1990-09-09", "male", ("Sam", "Doe"))


def pe_signs_without_leg_complaint() -> Chart:
    """Breathless and coughing blood, no leg or back complaint: PE speaks on its own."""
    return (Chart("pe-signs-without-leg-complaint", "1959-02-14", "female", ("Ada", "Moss"))
            .condition(SCT, "267036007", "Dyspnea (finding)", days=0.5)
            .condition(SCT, "66857006", "Hemoptysis (finding)", days=0.5)
            .vital(HR, "Heart rate", 108, "/min"))


# ---------------------------------------------------------------- real-chart coverage (issue 9)
LEFT, RIGHT = ("7771000", "Left (qualifier value)"), ("24028007", "Right (qualifier value)")
LBP = ("279039007", "Low back pain (finding)")


def cancer_snomed_breast() -> Chart:
    """A specific SNOMED CT cancer (not the general concept): Wells active cancer and the
    cancer red flag (value set malignant-neoplasm, GPS FSN rule)."""
    return (Chart("cancer-snomed-breast", "1968-05-19", "female", ("Helen", "Ward")).usual()
            .condition(SCT, "254837009", "Malignant neoplasm of breast (disorder)", days=120,
                       category="problem-list-item")
            .condition(SCT, "78514002", "Thigh pain (finding)", days=3))


def hip_fracture_snomed() -> Chart:
    return (Chart("hip-fracture-snomed", "1941-08-02", "female", ("Mary", "Cole")).usual()
            .condition(SCT, "5913000", "Fracture of neck of femur (disorder)", days=10)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=10))


def saddle_numbness() -> Chart:
    """Numbness recorded as a finding with a perineal bodySite: saddle anaesthesia."""
    return (Chart("saddle-numbness", "1976-01-30", "male", ("Rob", "Fisher")).usual()
            .condition(SCT, *LBP, days=5)
            .condition(SCT, "44077006", "Numbness (finding)", days=1,
                       site=[("38864007", "Perineal structure (body structure)")]))


def bilateral_sciatica_laterality() -> Chart:
    """SNOMED CT sciatica twice, sides in bodySite laterality qualifiers (no ICD side code)."""
    return (Chart("bilateral-sciatica-laterality", "1981-10-10", "female", ("Ana", "Lopes"))
            .usual()
            .condition(SCT, "23056005", "Sciatica (disorder)", days=6, site=[LEFT])
            .condition(SCT, "23056005", "Sciatica (disorder)", days=2, site=[RIGHT]))


def provisional_dvt() -> Chart:
    """A DVT entered as provisional is a suspicion: the Wells pathway runs."""
    return (Chart("provisional-dvt", "1973-06-21", "male", ("Sam", "Reyes")).usual()
            .condition(SCT, "404223003",
                       "Deep venous thrombosis of lower extremity (disorder)", days=0.2,
                       verification="provisional")
            .condition(SCT, "449614009", "Swelling of lower limb (finding)", days=1)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=2))


def old_active_dvt() -> Chart:
    """A DVT from a year ago still 'active' on the problem list: a previous DVT for Wells."""
    return (Chart("old-active-dvt", "1960-12-12", "female", ("Jo", "Baker")).usual()
            .condition(ICD, "I82.412",
                       "Acute embolism and thrombosis of left femoral vein", days=400,
                       category="problem-list-item")
            .condition(SCT, "449614009", "Swelling of lower limb (finding)", days=1)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=2))


def infection_ivdu() -> Chart:
    return (Chart("infection-ivdu", "1990-03-03", "male", ("Lee", "Grant")).usual()
            .condition(SCT, "228388006", "Intravenous drug user (finding)", days=700,
                       category="problem-list-item")
            .condition(SCT, *LBP, days=6))


def infection_immunosuppressed_crp() -> Chart:
    return (Chart("infection-immunosuppressed-crp", "1958-11-11", "female",
                  ("Ruth", "Adams")).usual()
            .condition(ICD, "Z79.52", "Long term (current) use of systemic steroids",
                       days=500, category="problem-list-item")
            .condition(SCT, *LBP, days=8)
            .lab("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", 48, "mg/L"))


def bilateral_foot_drop() -> Chart:
    return (Chart("bilateral-foot-drop", "1967-04-04", "male", ("Ian", "Moss")).usual()
            .condition(ICD, "M21.371", "Foot drop, right foot", days=3)
            .condition(ICD, "M21.372", "Foot drop, left foot", days=1)
            .condition(SCT, *LBP, days=7))


def osteoporosis_minor_fall() -> Chart:
    return (Chart("osteoporosis-minor-fall", "1958-02-14", "female", ("Pat", "Lowe")).usual()
            .condition(SCT, "64859006", "Osteoporosis (disorder)", days=1500,
                       category="problem-list-item")
            .condition(SCT, "1912002", "Fall (event)", days=4)
            .condition(SCT, *LBP, days=4))


def pregnancy_dvt() -> Chart:
    """Pregnant (pregnancy status Observation), swollen leg, negative D-dimer: RCOG, not
    the Wells and D-dimer pathway."""
    return (Chart("pregnancy-dvt", "1994-07-07", "female", ("Maya", "Singh")).usual()
            .coded("82810-3", "Pregnancy status", ("77386006", "Pregnant (finding)"), days=20)
            .condition(SCT, "449614009", "Swelling of lower limb (finding)", days=1)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=2)
            .lab(*DDIMER, 0.3, "ug/mL"))


def teenager_thigh_pain() -> Chart:
    return (Chart("teenager-thigh-pain", "2010-05-05", "male", ("Tom", "Hill")).usual()
            .condition(SCT, "449614009", "Swelling of lower limb (finding)", days=1)
            .condition(SCT, "78514002", "Thigh pain (finding)", days=2))


def potassium_meq() -> Chart:
    """Potassium in mEq/L (UCUM meq/L) is mmol/L for a monovalent ion; a D-dimer in a unit
    that cannot be converted is skipped and named, not guessed."""
    return (Chart("potassium-meq", "1952-09-09", "male", ("Vic", "Stone")).usual()
            .condition(ICD, "R25.2", "Cramp and spasm", days=3)
            .lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", 3.0, "mEq/L",
                 ucum="meq/L")
            .lab(*DDIMER, 1.2, "mmol/L"))


SCENARIOS: dict[str, tuple[str, Callable[[], Chart]]] = {
    "dvt-likely": ("Active breast cancer and a swollen leg: Wells 2, no D-dimer", dvt_likely),
    "dvt-likely-ddimer-positive": ("Knee replacement 3 weeks ago, swollen painful calf, "
                                   "D-dimer 1.4 ug/mL FEU", dvt_likely_ddimer_positive),
    "wells-low-ddimer-negative": ("Young woman, thigh pain, leg signs examined and absent, "
                                  "negative D-dimer; bedside Wells items still open",
                                  wells_low_ddimer_negative),
    "possible-pe": ("Sudden breathlessness and chest pain, heart rate 118, SpO2 92%, "
                    "previous DVT", possible_pe),
    "cauda-equina": ("Sciatica on both sides and new urinary retention", cauda_equina),
    "infection": ("Back pain with chills, 38.7 °C and a raised CRP", infection),
    "trauma-fall": ("83-year-old after a fall, unable to walk, pain 8/10", trauma_fall),
    "cancer-history": ("Prostate cancer in the past, weight loss, back pain", cancer_history),
    "hamstring-strain": ("Footballer with a coded hamstring strain and CK 640",
                         hamstring_strain),
    "cramps": ("Cramps with dehydration, potassium 3.1 and magnesium 1.5", cramps),
    "hamstring-tendinopathy": ("Two months of buttock and thigh pain, no code for "
                               "tendinopathy", hamstring_tendinopathy),
    "ischial-bursitis": ("Coded bursitis of the hip region with buttock pain",
                         ischial_bursitis),
    "sciatica-disc": ("Disc disorder with radiculopathy, back pain, numb leg", sciatica_disc),
    "spinal-stenosis": ("74-year-old with lumbar stenosis and neurogenic claudication",
                        spinal_stenosis),
    "bone-spurs": ("69-year-old with lumbar spondylosis", bone_spurs),
    "piriformis": ("Sciatic nerve lesion with buttock pain", piriformis),
    "referred-lumbar": ("Facet joint pain with low back pain", referred_lumbar),
    "no-relevant-data": ("Hypertension and normal vital signs only", no_relevant_data),
    "resolved-refuted-only": ("Resolved sciatica, a refuted DVT and a retention entered in "
                              "error", resolved_refuted_only),
    "fever-without-pain": ("Fever with sinusitis and no thigh, leg or back complaint: no "
                           "cards", fever_without_pain),
    "cancer-in-remission": ("Past prostate cancer, no current complaint: no cards",
                            cancer_in_remission),
    "only-patient": ("A chart with only a Patient: no cards", only_patient),
    "pe-signs-without-leg-complaint": ("Breathlessness and haemoptysis, heart rate 108, no leg "
                                       "complaint: the PE card shows on its own",
                                       pe_signs_without_leg_complaint),
    "cancer-snomed-breast": ("Breast cancer coded with a specific SNOMED CT concept",
                             cancer_snomed_breast),
    "hip-fracture-snomed": ("85-year-old with a SNOMED-coded fracture of the femoral neck",
                            hip_fracture_snomed),
    "saddle-numbness": ("Back pain and numbness recorded with a perineal body site",
                        saddle_numbness),
    "bilateral-sciatica-laterality": ("Sciatica coded twice, left and right in bodySite",
                                      bilateral_sciatica_laterality),
    "provisional-dvt": ("A provisional DVT (suspected) with a swollen leg", provisional_dvt),
    "old-active-dvt": ("A femoral DVT from a year ago still active on the problem list, "
                       "swollen leg now", old_active_dvt),
    "infection-ivdu": ("Back pain in an intravenous drug user, no fever recorded",
                       infection_ivdu),
    "infection-immunosuppressed-crp": ("Back pain on long-term steroids with CRP 48",
                                       infection_immunosuppressed_crp),
    "bilateral-foot-drop": ("New foot drop on both sides with back pain", bilateral_foot_drop),
    "osteoporosis-minor-fall": ("68-year-old with osteoporosis after a fall, back pain",
                                osteoporosis_minor_fall),
    "pregnancy-dvt": ("Pregnant, swollen leg, negative D-dimer", pregnancy_dvt),
    "teenager-thigh-pain": ("16-year-old with a swollen leg and thigh pain",
                            teenager_thigh_pain),
    "potassium-meq": ("Cramp with potassium 3.0 mEq/L; a D-dimer sent in mmol/L",
                      potassium_meq),
}

MALFORMED: dict[str, Any] = {
    "not-json.json": "{ this is not JSON",
    "no-patient.json": {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Condition", "id": "x",
                      "code": {"coding": [{"system": SCT, "code": "23056005"}]}}}]},
    "wrong-resource-type.json": {"resourceType": "Patient", "id": "not-a-bundle"},
}


def large_chart(observations: int) -> Chart:
    """Years of heart rates and potassium results, as an EHR with a long history sends them,
    and a fast heart rate this morning."""
    chart = Chart("large-chart", "1950-01-01", "male", ("Big", "Chart")).usual()
    chart.condition(SCT, "78514002", "Thigh pain (finding)", days=1)
    for i in range(1, observations // 2 + 1):
        chart.vital(HR, "Heart rate", 70 + i % 25, "/min", hours=24 * i / 1.2)
        chart.lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", 4.1, "mmol/L",
                  hours=24 * i / 1.2 + 3)
    chart.vital(HR, "Heart rate", 121, "/min", hours=0.5)
    return chart


def invalid_resources() -> dict[str, Any]:
    """A bundle whose Patient is fine but some resources are invalid FHIR: they are skipped
    and reported, the rest is used."""
    chart = Chart("invalid-resources", "1970-01-01", "male", ("Test", "Invalid"))
    chart.condition(SCT, "78514002", "Thigh pain (finding)", days=1)
    chart.vital(HR, "Heart rate", 124, "/min")
    chart.resources.append({"resourceType": "Observation", "id": "bad-value", "status": "final",
                            "code": {"coding": [{"system": LOINC, "code": HR}]},
                            "subject": chart.subject, "effectiveDateTime": _day(0.01),
                            "valueQuantity": {"value": "fast", "unit": "/min"}})
    chart.resources.append({"resourceType": "Condition", "id": "bad-date",
                            "code": {"coding": [{"system": SCT, "code": "267064002"}]},
                            "subject": chart.subject, "onsetDateTime": "last tuesday"})
    return chart.bundle("invalid-resources")


# ---------------------------------------------------------------- build and check


def build() -> None:
    sys.path.insert(0, str(HERE.parent))
    from cds.bundle import hook_request_from_bundle
    from cds.content import default_content

    content = default_content()
    for folder in ("bundles", "requests", "malformed"):
        (HERE / folder).mkdir(exist_ok=True)
    for n, (scenario, (_, make)) in enumerate(SCENARIOS.items()):
        bundle = make().bundle(scenario)
        _write(HERE / "bundles" / f"{scenario}.json", bundle)
        request = hook_request_from_bundle(bundle, content)
        request["hookInstance"] = f"00000000-0000-4000-8000-{n:012d}"
        _write(HERE / "requests" / f"{scenario}.json", request)
    for name, value in MALFORMED.items():
        path = HERE / "malformed" / name
        path.write_text(value if isinstance(value, str) else json.dumps(value, indent=2) + "\n")
    _write(HERE / "malformed" / "invalid-resources.json", invalid_resources())
    _write_readme()


def _write_readme() -> None:
    lines = [
        "# Examples",
        "",
        "FHIR R4 bundles, one per clinical scenario, pinned to 2026-11-24 (generated by",
        "`build_examples.py`; edit the scenario there, never the JSON by hand).",
        "",
        "- `bundles/<id>.json`: the patient's record as a FHIR collection Bundle",
        "- `requests/<id>.json`: the `patient-view` request an EHR would send (prefetch filled)",
        "- `expected/<id>.json`: the cards a person reviewed for it (checked by the tests)",
        "- `malformed/`: inputs that must fail clearly or be partly skipped",
        "- `synthea/`: two Synthea patients from smart-on-fhir/generated-sample-data",
        "  (Apache-2.0), unrelated to thigh pain, to show what replay does with real charts",
        "",
        "```sh",
        "cds replay examples/bundles/possible-pe.json --as-of 2026-11-24",
        "cds replay examples/bundles --as-of 2026-11-24      # the whole library, with a summary",
        "```",
        "",
        "| id | patient |",
        "|---|---|",
    ]
    lines += [f"| `{sid}` | {desc} |" for sid, (desc, _) in SCENARIOS.items()]
    (HERE / "README.md").write_text("\n".join(lines) + "\n")


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def observed(scenario: str) -> dict[str, Any]:
    """What a person checks on a scenario's cards: indicator and summary, in order."""
    sys.path.insert(0, str(HERE.parent))
    from cds.hooks import HookRequest
    from cds.service import ThighPainService

    request = json.loads((HERE / "requests" / f"{scenario}.json").read_text())
    response, _ = ThighPainService().call("thigh-pain", HookRequest.model_validate(request),
                                          as_of=AS_OF)
    return {
        "scenario": scenario,
        "description": SCENARIOS[scenario][0],
        "cards": [f"{c.indicator}: {c.summary}" for c in response.cards],
    }


def check(update: bool) -> int:
    changed = 0
    (HERE / "expected").mkdir(exist_ok=True)
    for scenario in SCENARIOS:
        path = HERE / "expected" / f"{scenario}.json"
        now = json.dumps(observed(scenario), indent=2, ensure_ascii=False) + "\n"
        before = path.read_text() if path.exists() else ""
        if now != before:
            changed += 1
            sys.stdout.writelines(difflib.unified_diff(
                before.splitlines(True), now.splitlines(True), str(path), "replayed"))
            if update:
                path.write_text(now)
    print(f"{changed} scenario(s) differ from expected/" + (" (updated)" if update else ""))
    return 1 if changed and not update else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="diff replayed cards")
    parser.add_argument("--update", action="store_true", help="accept the replayed cards")
    parser.add_argument("--large", nargs=2, metavar=("OBSERVATIONS", "PATH"),
                        help="write a large chart (too big to keep in the repository)")
    args = parser.parse_args()
    if args.large:
        _write(Path(args.large[1]), large_chart(int(args.large[0])).bundle("large-chart"))
        return 0
    if args.check or args.update:
        return check(args.update)
    build()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
