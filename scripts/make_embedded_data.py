"""Generate the embedded default dataset, ``configs/data/dailytalk_summaries.jsonl``.

The file is a small, synthetic dialogue-summarisation set written by this project for the embedded default config: the
unit tests and the CPU demo of the audited fine-tune use it, so it must be small, clean, free of personal data, and
regenerable byte for byte. It is not a benchmark and contains no text from any public dataset. Licence: Apache-2.0,
like the rest of the project.

Design
------
* Each row is one short everyday exchange (``topic``) in the DialogSum layout: turns prefixed ``#Person1#: `` and
  ``#Person2#: ``, joined with newlines, 4-8 turns and roughly 40-110 words.
* A scenario is a table entry: slot pools (days, times, items, prices, ...), the turn templates, and one summary
  template. Turn templates hold inline alternatives, ``[a|b|c]`` (which may nest), picked at random, and slots,
  ``{name}``, filled from the pools. Slots that share one pool get distinct values (e.g. an old and a new day); a pool
  entry may be a dict that sets several slots at once (e.g. a symptom with its matching medicine, or "your health
  card" for the dialogue with "their health card" for the summary).
* The summary is one formulaic third-person sentence, always naming the speakers ``#Person1#`` and ``#Person2#``,
  and restates the slot values of the dialogue, so it can be derived from the dialogue alone.
* Speakers are only ever ``#Person1#``/``#Person2#`` or roles ("the dentist"); there are no names, e-mail addresses,
  phone numbers or street addresses, and places are generic ("the station", "the city library").
* Rows are drawn by rejection: a candidate is kept only if its word count is in range, its normalised summary is new,
  and the Jaccard similarity of its word 5-gram shingles (lower-cased, punctuation removed) with every row already
  kept stays below ``MAX_JACCARD``, so the leakage audit finds no near-duplicates between splits.
* One seeded ``random.Random`` drives everything; the rows are shuffled at the end and numbered ``dt-0001``...

Usage: ``python scripts/make_embedded_data.py`` writes the file; ``--check`` only verifies that the committed file is
what the generator produces (exit status 1 when not).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 20240611
ROWS_PER_SCENARIO = 10
MAX_JACCARD = 0.2
MIN_WORDS, MAX_WORDS = 40, 110
MAX_ATTEMPTS = 20000
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "configs" / "data" / "dailytalk_summaries.jsonl"


@dataclass(frozen=True)
class Scenario:
    """One everyday situation: slot pools, turn templates (alternating from #Person1#) and a summary template."""

    topic: str
    slots: dict[str, list]
    turns: tuple[str, ...]
    summary: str
    closing: bool = True  # may end with a short thank-you exchange


def dollars(*amounts: object) -> list[str]:
    return [f"${amount}" for amount in amounts]


def says(name: str, *pairs: tuple[str, str]) -> list[dict[str, str]]:
    """Pool entries worded differently in the dialogue (slot ``name``) and in the summary (slot ``name_sum``)."""
    return [{name: say, f"{name}_sum": summ} for say, summ in pairs]


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DAY_TIMES = ["9 am", "9:30 am", "10 am", "10:30 am", "11 am", "11:30 am", "2 pm", "2:30 pm", "3 pm", "3:30 pm",
             "4 pm", "4:30 pm"]
EVENING = ["6 pm", "6:30 pm", "7 pm", "7:30 pm", "8 pm", "8:30 pm", "9 pm"]
PEOPLE = ["two", "three", "four", "five", "six", "seven", "eight"]
MINUTES = ["ten", "fifteen", "twenty", "twenty-five", "thirty", "forty", "forty-five"]
GROCERIES = ["milk", "eggs", "bread", "rice", "tomatoes", "onions", "cheese", "apples", "bananas", "butter", "carrots",
             "yoghurt", "lemons", "spinach", "coffee", "potatoes", "oats", "peppers"]
GREETINGS = ["Hello.", "Hi.", "Hi there.", "Good morning.", "Good afternoon."]
THANKS = "[Thanks a lot.|Great, thank you.|Perfect, thanks for your help.|That's all, thanks.|Thank you very much.]"
WELCOME = "[You're welcome.|My pleasure.|No problem, have a nice day.|Happy to help.|Any time.]"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("restaurant booking", {
        "n": PEOPLE, "day": DAYS, "time": EVENING,
        "seat": ["by the window", "on the terrace", "in the quiet corner", "near the garden", "near the fireplace"],
        "early": ["ten minutes", "fifteen minutes", "five minutes", "a few minutes"]}, (
        "[I'd like to book a table for {n} [on|this] {day}.|Could I book a table for {n} [on|this] {day}, please?|I "
        "want to book a table for {n} on {day}.]",
        "[Certainly.|Of course.|Sure.] [What time would you like?|What time suits you?|For what time?]",
        "[Around|At|About] {time}, and [we would like|we'd prefer|ideally] a table {seat}.",
        "[That's fine|No problem|That works], [a table {seat} is free|we have one {seat}]. [Please arrive|We ask "
        "guests to arrive|Do come] {early} early[.| to confirm it.]"),
        "#Person1# books a table for {n} {seat} at {time} on {day}, and #Person2# asks them to arrive {early} early."),
    Scenario("doctor's appointment", {
        "symptom": ["a sore throat", "a bad cough", "back pain", "a rash", "headaches", "an earache",
                    "a sprained ankle"],
        "ill": ["two days", "three days", "a week", "four days", "five days", "ten days"], "day": DAYS,
        "time": DAY_TIMES, "bring": says("bring", ("your health card", "their health card"),
                                          ("a list of your medicines", "a list of their medicines"),
                                          ("your previous test results", "their previous test results"),
                                          ("your insurance form", "their insurance form"))}, (
        "I [need|would like] [an appointment|to see the doctor] [because I have|about] {symptom}.",
        "[How long have you had it?|How long has this been going on?|Since when have you had it?]",
        "For [about|almost] {ill}[ now.|, and it's getting worse.|, but it's not getting better.]",
        "[The doctor can see you|The doctor is free|There is a free slot] on {day} at {time}. [Please bring|Remember "
        "to bring|Don't forget] {bring}.",
        "{day} at {time} is [fine|perfect|good for me]. [See you then.|I will be there.|I'll be there on time.]",
        "[Great, you're booked in.|You're all set.|Lovely, I have put you down.]"),
        "#Person1# books a doctor's appointment for {symptom} on {day} at {time}, and #Person2# asks them to "
        "bring {bring_sum}."),
    Scenario("returning a product", {
        "item": ["a kettle", "a pair of shoes", "a lamp", "a jacket", "a toaster", "a backpack", "a blender",
                 "a desk chair", "a rug"],
        "reason": ["it stopped working", "it is the wrong size", "it arrived damaged", "a part is missing",
                   "the colour is different from the picture"],
        "ago": ["yesterday", "two days ago", "three days ago", "last week", "on Saturday", "at the weekend"],
        "price": dollars(19, 25, 34, 40, 45, 59, 65, 79, 89, 120),
        "outcome": ["a full refund", "a store credit voucher", "an exchange for a new one",
                    "a refund to the original card"]}, (
        "I [bought|ordered] {item} [here|from your shop] {ago}, [but|and unfortunately] {reason}.",
        "[I'm sorry to hear that.|Sorry about that.|Oh, I apologise.] [Do you have the receipt?|Have you got the "
        "receipt?|Could I see your receipt?]",
        "[Yes, here it is.|Yes, I have it here.|Yes, it's right here.] [I paid|It cost] {price}.",
        "[Thank you.|Thanks.|Great.] [I can offer you|We can give you|You can have] {outcome}[.| right away.| today.]"),
        "#Person1# returns {item} that cost {price} because {reason}, and #Person2# offers {outcome}."),
    Scenario("asking directions", {
        "place": ["the station", "the city library", "the post office", "the town hall", "the museum",
                  "the hospital", "the market square", "the swimming pool", "the north car park", "the bus station"],
        "way": ["turn left at the traffic lights", "go straight past the bakery", "cross the bridge and turn right",
                "take the second turning on the left", "walk through the park and turn left"],
        "mins": ["five", "ten", "fifteen", "three", "twenty"],
        "landmark": ["next to the bank", "opposite the cinema", "behind the church", "beside the supermarket",
                     "across from the school"]}, (
        "[Excuse me,|Sorry to bother you,|Pardon me,] [how do I get to|could you tell me the way to|where is] {place}?",
        "[Sure.|Of course.|No problem.] [Just|You need to|Simply] {way}.",
        "[Is it far?|How long does it take?|Can I walk there?]",
        "[It's about|Only about|Roughly] {mins} minutes on foot. [It's|You'll find it] {landmark}."),
        "#Person1# asks the way to {place}, and #Person2# says to {way}, a {mins}-minute walk, {landmark}."),
    Scenario("hotel check-in", {
        "nights": ["one night", "two nights", "three nights", "four nights", "five nights", "a week"],
        "room": ["a double room", "a twin room", "a single room", "a family room", "a suite"],
        "floor": ["second", "third", "fourth", "fifth", "sixth", "seventh"],
        "bfast": ["6:30 am", "7 am", "7:30 am", "8 am"], "out": ["10 am", "11 am", "noon"]}, (
        "[I have a booking for|I've reserved|I booked] {room} for {nights}.",
        "[Welcome.|Welcome to the hotel.|Thank you.] [Your room is on the {floor} floor.|You are on the {floor} "
        "floor.|I've put you on the {floor} floor.]",
        "[And breakfast?|What time is breakfast?|When is breakfast served?]",
        "[Breakfast is served|Breakfast runs|You can have breakfast] from {bfast} in the dining room, and checkout "
        "is at {out}."),
        "#Person1# checks in to {room} for {nights}, and #Person2# gives a room on the {floor} floor with breakfast "
        "from {bfast} and checkout at {out}."),
    Scenario("job interview scheduling", {
        "role": ["assistant manager", "sales advisor", "junior designer", "warehouse supervisor",
                 "customer service agent", "lab technician", "accountant", "web developer"],
        "day": DAYS[:5], "time": DAY_TIMES,
        "how": ["at the main office", "by video call", "by phone", "at the north site"],
        "length": ["thirty minutes", "forty-five minutes", "an hour"],
        "bring": says("bring", ("a copy of your certificates", "a copy of their certificates"),
                       ("a short portfolio", "a short portfolio"), ("two references", "two references"),
                       ("a printed cover letter", "a printed cover letter"))}, (
        "[I'm calling about|This is about|I'm phoning regarding] your application for the {role} position.",
        "[Oh, thank you for calling.|Great, thanks for getting back to me.|Thank you, I was hoping to hear back.]",
        "[We'd like to invite you for an interview on {day} at {time}.|Could you come for an interview on {day} at "
        "{time}?|Are you free for an interview on {day} at {time}?]",
        "[Yes, that suits me.|Yes, I can make that.|That works for me.] [Should I bring anything?|Do I need to "
        "bring anything?|What should I prepare?]",
        "[Please bring|Just bring|Bring] {bring}. [The interview is|It will be] {how} and [takes|lasts] about "
        "{length}.",
        "[Perfect, I'll be ready.|Great, see you then.|Thank you, I look forward to it.]"),
        "#Person1# invites #Person2# to interview for the {role} job on {day} at {time} {how}, and asks them to "
        "bring {bring_sum}.", closing=False),
    Scenario("library book renewal", {
        "book": ["a cookbook", "a history book", "a novel", "a travel guide", "a book on gardening",
                 "a science textbook", "a poetry collection", "a book about birds"],
        "late": ["two days", "three days", "a day", "four days", "a week"],
        "fee": ["50 cents", "$1", "$1.50", "$2", "$3"],
        "weeks": says("weeks", ("week", "a week"), ("two weeks", "two weeks"), ("three weeks", "three weeks"))}, (
        "[I'd like to renew {book} I borrowed.|Could I renew {book} I took out?|Can I renew {book} I have on "
        "loan?]",
        "[Let me check.|One moment.|Let me look it up.] [It is|It's] {late} overdue, so there is a fee of {fee}.",
        "[Oh, I didn't realise.|Sorry about that.|I see, that's fair.] [Can I pay now?|I'll pay it now.|Can I still "
        "renew it?]",
        "[Yes.|Sure.|Of course.] [I've renewed it for|It's now renewed for|You now have it for] another {weeks}."),
        "#Person1# renews {book} that is {late} overdue, and #Person2# charges a fee of {fee} and extends the loan "
        "by {weeks_sum}."),
    Scenario("car repair quote", {
        "part": ["the brakes", "the battery", "a broken headlight", "the radiator", "the exhaust",
                 "the air conditioning", "the clutch", "the windscreen wipers"],
        "price": dollars(85, 120, 150, 180, 240, 310, 450, 620, 780),
        "ready": ["tomorrow afternoon", "by Thursday", "in two days", "by the end of the week", "on Monday morning",
                  "later today"]}, (
        "[Could you|Can you|Would you] [give me a quote|tell me the price] to [fix|repair] {part} on my car?",
        "[I've had a look.|We checked it.|The mechanic looked at it.] [It will cost|The total is|It comes to] "
        "{price}, [parts and labour included|including parts|with labour included].",
        "[That's a bit more than I expected.|Okay, that's reasonable.|Fine, please go ahead.] [When will it be "
        "ready?|How long will it take?|When can I collect it?]",
        "[It should be ready|You can pick it up|We'll have it done] {ready}."),
        "#Person1# asks for a quote to repair {part} on their car, and #Person2# says it costs {price} and will be "
        "ready {ready}."),
    Scenario("gym membership", {
        "plan": ["monthly", "yearly", "off-peak", "student", "family"], "price": dollars(19, 25, 29, 35, 39, 45, 55),
        "extra": ["a free fitness class each week", "free use of the pool", "a free induction session",
                  "access to the sauna", "a free towel service"],
        "hours": ["from 6 am to 10 pm", "from 5 am to 11 pm", "from 7 am to 9 pm", "from 6 am to midnight"]}, (
        "[I'm interested in the {plan} membership.|I'd like to ask about the {plan} membership.|Can you tell me "
        "about the {plan} membership?]",
        "[It costs|The price is|That one is] {price} a month, and it [includes|comes with] {extra}.",
        "[What are the opening hours?|When is the gym open?|How late are you open?]",
        "[We're open|The gym is open|Opening hours are] {hours}, [every day|seven days a week|including weekends].",
        "[Great, I'll sign up today.|Sounds good, I'll join.|Okay, please sign me up.]",
        "[Wonderful.|Excellent.|Great.] [Just fill in this form.|Please fill in this short form.|I'll just need "
        "you to complete this form.]"),
        "#Person1# joins on the {plan} plan at {price} a month, and #Person2# says it includes {extra} and is "
        "open {hours}.", closing=False),
    Scenario("lost luggage", {
        "bag": ["a black suitcase", "a blue backpack", "a red holdall", "a grey suitcase", "a green holdall",
                "a brown case"],
        "time": DAY_TIMES, "status": ["stayed at the departure airport", "is on a later flight",
                                      "went to the wrong terminal", "was loaded onto another plane"],
        "dest": says("dest", ("to your hotel", "to their hotel"), ("to your home", "to their home"),
                     ("to the airport desk", "to the airport desk")),
        "when": ["within 24 hours", "by tomorrow evening", "within two days", "by tonight"]}, (
        "My [luggage|bag] didn't [arrive|come out|show up] [on the carousel|at baggage claim]. [It's|It is] {bag}.",
        "[I'm sorry about that.|I apologise for that.|Sorry for the trouble.] [Which flight were you on?|What "
        "flight did you arrive on?|Which flight was it?]",
        "The [flight|one] that landed at {time}[ today.|.| earlier today.]",
        "[It looks like|It seems|Our system shows] your bag {status}. [We'll deliver it|We will send it|It will be "
        "brought] {dest} {when}."),
        "#Person1# reports {bag} missing after the {time} flight, and #Person2# says it {status} and will go "
        "{dest_sum} {when}."),
    Scenario("haircut", {
        "cut": ["a trim", "a short back and sides", "a fringe trim", "a layered cut", "a buzz cut",
                "a wash and blow-dry"],
        "day": DAYS[1:], "time": DAY_TIMES,
        "stylist": ["the senior stylist", "the junior stylist", "the owner", "the new stylist"],
        "price": dollars(15, 18, 22, 25, 30, 35, 40, 45)}, (
        "[[Can|Could] I book {cut} [for|on|this] {day}?|I'd like to book {cut} [for|on] {day}.|Do you have time for "
        "{cut} on {day}?]",
        "[We have|There's] a free slot at {time} with {stylist}[.|, if that suits you.]",
        "[That's perfect.|Great, I'll take it.|That works.] [How much will it be?|How much does it cost?|What's the "
        "price?]",
        "[It's|That will be|The price is] {price}[.|, paid at the end.|, and you can pay by card.]"),
        "#Person1# books {cut} on {day} at {time} with {stylist}, and #Person2# says it costs {price}."),
    Scenario("pharmacy", {
        "need": [{"symptom": s, "med": m} for s, m in (
            ("a dry cough", "cough syrup"), ("hay fever", "allergy tablets"), ("a headache", "painkillers"),
            ("itchy eyes", "eye drops"), ("a blocked nose", "a nasal spray"), ("a sore throat", "throat lozenges"),
            ("insect bites", "a soothing cream"), ("heartburn", "antacid tablets"))],
        "dose": ["twice a day", "three times a day", "once in the morning", "every four hours", "before bed"],
        "note": ["with food", "after meals", "with a glass of water", "for no more than a week"],
        "price": ["$4.50", "$5", "$6.99", "$7.50", "$8", "$9.25", "$12"]}, (
        "[I need something for {symptom}.|Could I get something for {symptom}, please?|I'm looking for something "
        "for {symptom}.]",
        "[I'd recommend|You could try|Try] {med}. Take one dose {dose} {note}.",
        "[How much is it?|What does it cost?|Okay, how much?]",
        "[It's|That's|That comes to] {price}[.|, please.]"),
        "#Person1# asks for something for {symptom}, and #Person2# recommends {med}, taken {dose} {note}, for "
        "{price}."),
    Scenario("bank card blocked", {
        "where": ["at the supermarket", "at a cash machine", "when paying online", "at a petrol station",
                  "in a restaurant", "at the train station"],
        "reason": ["three wrong code entries", "an unusual payment abroad", "a suspicious online purchase",
                   "a large cash withdrawal"],
        "fix": says("fix", ("I've unblocked it, so you can use it again straight away.", "unblocks it at once"),
                    ("For safety we'll send a new card, which arrives in three working days.",
                     "sends a new card in three working days"),
                    ("I've unblocked it, but please wait an hour before using it.", "unblocks it after an hour"),
                    ("We'll cancel it and post a replacement, which takes about a week.",
                     "posts a replacement within a week"))}, (
        "My card was [declined|refused|rejected] {where} [today|this morning|yesterday]. [Can you help?|What's "
        "going on?|Is there a problem?]",
        "[Let me check.|One moment, please.|I'll look into it.] [The card was blocked|Your card has been blocked|We "
        "blocked the card] [after|because of] {reason}.",
        "[That was me, I'm afraid.|Oh, I see.|I understand.] [Can you unblock it?|What can I do?|How do I fix it?]",
        "{fix}"),
        "#Person1# reports their card was declined {where}, and #Person2# says it was blocked after {reason} and "
        "{fix_sum}."),
    Scenario("moving house", {
        "home": ["a one-bedroom flat", "a two-bedroom flat", "a three-bedroom house", "a studio flat",
                 "a small house", "a shared flat"],
        "day": DAYS, "van": ["a removal van", "a large truck", "two removal vans", "a small truck"],
        "movers": ["two movers", "three movers", "four movers"], "price": dollars(280, 350, 420, 480, 550, 640, 720),
        "extra": ["packing boxes are included", "insurance is included", "furniture dismantling is free",
                  "the price includes fuel"]}, (
        "I'm moving out of {home} [on|next|this] {day}. [Can you help?|Are you available?|Do you have a team free?]",
        "[Yes, we are free that day.|We can do that.|Yes, we have a slot.] [For that size|For a move like that], "
        "we'd send {van} and {movers}.",
        "[How much would that be?|What would that cost?|And the price?]",
        "[It's|That would be|The total is] {price}, and {extra}."),
        "#Person1# books a move out of {home} on {day}, and #Person2# offers {van} with {movers} for {price}, "
        "noting that {extra}."),
    Scenario("weather small talk", {
        "today": ["sunny and warm", "cold and windy", "grey and drizzly", "foggy", "hot and humid", "frosty",
                  "bright but chilly"],
        "storm": ["heavy rain", "snow", "thunderstorms", "strong winds", "hail", "a cold snap"],
        "when": ["tomorrow", "tomorrow night", "this weekend", "on Monday", "on Wednesday", "on Friday"],
        "plan": ["go for a walk by the river", "have a picnic in the park", "go cycling", "work in the garden",
                 "wash the car", "paint the fence"]}, (
        "[It's very|It's really|It's quite] {today} today, isn't it?",
        "[Yes, it is.|It certainly is.|Yes, it really is.] [I heard|The forecast says|Apparently] there will be "
        "{storm} {when}.",
        "[Really?|Oh no.|Oh, really?] [I was planning to|I wanted to|I hoped to] {plan} {when}.",
        "[Then maybe|Perhaps|You might want to] {plan} today instead[.|, while it lasts.]",
        "[Good idea, I'll do that.|You're right, I'll go this afternoon.|That's a good idea.]",
        "[Enjoy it!|Have fun.|Have a good time.]"),
        "#Person1# mentions the {today} weather, #Person2# warns of {storm} {when}, and #Person1# decides to {plan} "
        "today instead.", closing=False),
    Scenario("birthday party planning", {
        "who": says("who", ("our mother", "their mother"), ("our father", "their father"),
                    ("our grandmother", "their grandmother"), ("our sister", "their sister"),
                    ("our brother", "their brother"), ("our aunt", "their aunt"), ("our uncle", "their uncle")),
        "day": DAYS[4:], "venue": ["at the community hall", "in the back garden", "at the pizza restaurant",
                                   "at the bowling alley", "in the park", "at the sports club"],
        "guests": ["twenty", "thirty", "fifteen", "twelve", "forty"],
        "food": ["a chocolate cake", "sandwiches and salads", "a barbecue", "pizza", "homemade curry",
                 "a big fruit cake"]}, (
        "[Shall we|Let's|Why don't we] [throw|plan|organise] a surprise party for {who}'s birthday [on|next|this] "
        "{day}?",
        "[Great idea!|Good idea.|I love that idea.] [We could have it {venue}.|How about holding it {venue}?|Why "
        "not have it {venue}?]",
        "[Perfect.|Sounds good.|Yes.] [I'll invite about|Let's invite around|We can ask about] {guests} people.",
        "[Then I'll|And I'll|I can] [take care of|sort out|organise] the food, [maybe|perhaps|probably] {food}."),
        "#Person1# and #Person2# plan a surprise party for {who_sum}'s birthday on {day} {venue} for {guests} guests, "
        "with #Person2# bringing {food}.", closing=False),
    Scenario("cinema tickets", {
        "n": PEOPLE[:5], "film": ["the new animated film", "the science fiction film", "the comedy", "the horror film",
                                  "the documentary about the ocean", "the action film", "the musical"],
        "time": EVENING, "screen": ["screen two", "screen four", "screen one", "screen six"],
        "seats": ["in the middle", "near the back", "at the front", "on the aisle"],
        "price": dollars(8, 9, 10, 11, 12, 13, 14)}, (
        "[[Can|Could] I have {n} tickets for {film} at {time}, please?|I'd like {n} tickets for {film} at {time}.]",
        "[Sure.|Certainly.|Of course.] [Where would you like to sit?|Any seat preference?|Where do you want to sit?]",
        "[Somewhere|Seats|Anywhere] {seats}, [please.|if possible.]",
        "[Done.|All right.|Okay.] [Tickets are|That's|It's] {price} each, and it's [in|showing in] {screen}."),
        "#Person1# buys {n} tickets for {film} at {time} with seats {seats}, and #Person2# charges {price} each and "
        "says it is in {screen}."),
    Scenario("bus timetable", {
        "dest": ["the airport", "the university", "the hospital", "the city centre", "the beach",
                 "the shopping centre", "the stadium"],
        "bus": ["number 7", "number 12", "number 24", "number 3", "number 40", "number 15"],
        "freq": ["every ten minutes", "every fifteen minutes", "every half hour", "every twenty minutes",
                 "every hour"],
        "next": ["two", "five", "eight", "twelve", "three"], "fare": ["$2", "$2.50", "$3", "$1.80", "$3.20"]}, (
        "[Which bus goes to|How do I get to|What bus do I take for] {dest}?",
        "[Take|You want|You need] the {bus}. It [runs|comes|leaves] {freq}.",
        "[When is the next one?|When does the next one leave?|Is there one soon?]",
        "[The next one is in|There's one in|It should arrive in] {next} minutes[, and the fare is {fare}.|. The "
        "fare is {fare}.]"),
        "#Person1# asks which bus goes to {dest}, and #Person2# says the {bus} runs {freq}, the next in {next} "
        "minutes, with a {fare} fare."),
    Scenario("IT password reset", {
        "system": ["email account", "laptop login", "payroll system", "shared drive", "project tracker",
                   "video call app"],
        "problem": ["I forgot my password.", "My account is locked.", "My password expired.",
                    "It keeps rejecting my password."],
        "link": says("link", ("a temporary link to your work phone", "a temporary link to their work phone"),
                     ("a reset code to your manager", "a reset code to their manager"),
                     ("a reset link by text", "a reset link by text"),
                     ("a one-time code to your desk phone", "a one-time code to their desk phone")),
        "rule": ["at least twelve characters", "a number and a symbol", "at least one capital letter",
                 "a mix of letters and numbers"],
        "days": ["ninety", "sixty", "thirty", "one hundred and eighty"]}, (
        "[I can't log into|I'm locked out of|I can't access] the {system}. {problem}",
        "[No problem.|Don't worry.|That's easy to fix.] [I've sent|I'm sending|I just sent] {link}.",
        "[Got it.|Okay, it's here.|Thanks, I have it.] [Any rules for the new password?|What should the new "
        "password look like?|Is there anything I should know?]",
        "[It must contain|Make sure it has|Please use] {rule}, [and it expires in|and it will need changing in|and "
        "it's valid for] {days} days."),
        "#Person1# cannot access the {system}, and #Person2# sends {link_sum} and says the new password needs {rule}."),
    Scenario("renting a flat", {
        "flat": ["a one-bedroom flat", "a studio", "a two-bedroom flat", "a flat above the bakery",
                 "a flat near the park", "a loft flat"],
        "rent": dollars(700, 780, 850, 920, 990, 1100, 1250, 1400),
        "bills": ["water is included", "heating is included", "bills are extra", "internet is included"],
        "deposit": ["one month's rent", "two months' rent", "$500", "$800", "$1000"],
        "view": ["on Saturday morning", "on Monday evening", "tomorrow at noon", "on Thursday after work",
                 "on Sunday afternoon"]}, (
        "[I'm calling about|I saw the advert for|I'm interested in] {flat}[ for rent.|.]",
        "[It's still available.|Yes, it's still free.|It hasn't been taken yet.] [The rent is|It costs|It's] "
        "{rent} a month, and {bills}.",
        "[Is there a deposit?|How much is the deposit?|And the deposit?]",
        "[The deposit is|We ask for|You'd pay] {deposit}. [Would you like to see it|Can you come for a viewing|Do "
        "you want to view it] {view}?",
        "[Yes, that suits me.|Yes, please.|That would be great.]",
        "[Great, see you then.|Lovely, I'll meet you there.|Perfect, I'll put you down.]"),
        "#Person1# asks about {flat} at {rent} a month, and #Person2# asks for {deposit} as a deposit and offers "
        "a viewing {view}.", closing=False),
    Scenario("ordering pizza", {
        "n": ["two", "three", "four"], "size": ["small", "medium", "large", "extra large"],
        "topping": ["mushroom", "pepperoni", "vegetable", "ham and pineapple", "four cheese", "spicy chicken",
                    "margherita"],
        "side": ["garlic bread", "a bottle of lemonade", "a side salad", "chicken wings", "potato wedges"],
        "price": dollars(22, 28, 31, 36, 42, 47, 53), "mins": MINUTES[2:]}, (
        "[I'd like to order {n} {size} {topping} pizzas.|[Can|Could] I order {n} {size} {topping} pizzas, please?|I "
        "want {n} {size} {topping} pizzas for delivery.]",
        "[Anything else?|Would you like anything with that?|Any sides or drinks?]",
        "[Yes,|Yes, please add|And] {side}[, please.|.]",
        "[That's|The total is|That comes to] {price}. [It'll be with you in|Delivery takes about|Expect it in] "
        "{mins} minutes."),
        "#Person1# orders {n} {size} {topping} pizzas with {side}, and #Person2# says it costs {price} and will "
        "arrive in {mins} minutes."),
    Scenario("exam results", {
        "subject": ["maths", "chemistry", "history", "biology", "physics", "economics", "geography", "music"],
        "grade": ["an A", "a B", "an A minus", "a B plus", "a distinction", "a merit"],
        "pct": ["seventy-eight", "eighty-one", "eighty-four", "eighty-seven", "ninety", "ninety-two", "seventy-five"],
        "next": ["apply for the advanced course", "take a short holiday", "celebrate with the family",
                 "start the next module early", "apply for a summer internship",
                 "help younger students with revision"]}, (
        "[Have you got|Did you get|Have you seen] your {subject} results yet?",
        "[Yes, I got|I did! I got|Yes, just now. I got] {grade}[, with {pct} percent.|. It was {pct} percent "
        "overall.]",
        "[That's brilliant!|Congratulations!|Well done!] [What will you do now?|What's next for you?|Any plans "
        "now?]",
        "[I'm going to|I plan to|I think I'll] {next}."),
        "#Person1# asks about the {subject} results, and #Person2# says they got {grade} with {pct} percent and "
        "plans to {next}.", closing=False),
    Scenario("plumber visit", {
        "issue": ["a leaking kitchen tap", "a blocked sink", "a dripping shower", "no hot water", "a running toilet",
                  "a burst pipe under the sink"],
        "day": DAYS[:6], "window": ["between 8 and 10 am", "between 1 and 3 pm", "between 9 and 11 am",
                                    "after 4 pm", "early in the morning"],
        "callout": dollars(50, 60, 75, 80, 90),
        "tip": ["turn off the water at the main valve", "put a bucket under it", "avoid using that sink",
                "keep the area dry"]}, (
        "[I have|We've got|There's] {issue} [at home|in my flat|in the house]. [Can someone come?|Could you send a "
        "plumber?|Are you free this week?]",
        "[Our plumber can come|We can send someone|Someone can visit] on {day} {window}.",
        "[How much is the call-out fee?|Is there a call-out charge?|What will it cost?]",
        "[The call-out fee is|It's|There's a fee of] {callout} plus parts. [Until then,|Meanwhile,|In the "
        "meantime,] {tip}."),
        "#Person1# reports {issue}, and #Person2# books a plumber for {day} {window} with a {callout} call-out "
        "fee."),
    Scenario("train delay", {
        "train": ["the 8:15", "the 9:40", "the 7:05", "the 6:50", "the 10:20", "the 5:30", "the 4:45"],
        "delay": ["twenty minutes", "half an hour", "forty minutes", "an hour", "fifteen minutes"],
        "reason": ["a signal failure", "a broken-down train ahead", "a fallen tree on the line", "a staff shortage",
                   "flooding near the tunnel"],
        "platform": ["platform two", "platform five", "platform one", "platform eight", "platform three"],
        "alt": ["take the replacement bus outside", "take the express service instead",
                "change at the next station", "claim a refund"]}, (
        "[Is|Excuse me, is] {train} [train|service] [running on time|delayed]?",
        "[I'm afraid it's|Sorry, it's|Unfortunately it's] delayed by {delay} [because of|due to] {reason}. It "
        "[will now leave|now leaves|is now leaving] from {platform}.",
        "[Is there another option?|Can I get there another way?|What should I do?]",
        "[You can|You could|It's best to] {alt}."),
        "#Person1# asks about {train} train, and #Person2# says it is {delay} late due to {reason} and suggests "
        "they {alt}."),
    Scenario("neighbour noise", {
        "pair": [{"noise": n, "promise": p} for n, p in (
            ("loud music", "keep the music down after 10 pm"), ("a dog barking", "walk the dog before bedtime"),
            ("drilling", "only drill at weekends"), ("party noise", "give notice before the next party"),
            ("the washing machine", "put a mat under the washing machine"),
            ("banging doors", "close the doors gently"), ("loud television", "turn the television down at night"))],
        "when": ["late at night", "after midnight", "early in the morning", "on weeknights", "at around 11 pm"],
        "why": ["I have to get up at 5 am for work", "the baby can't sleep", "I'm studying for exams",
                "I work night shifts and sleep during the day"]}, (
        "[Sorry to bother you,|Hi, excuse me,|I hope you don't mind me asking,] but I keep hearing {noise} {when}.",
        "[Oh, I'm so sorry.|I had no idea, sorry.|I apologise, I didn't realise.] [Is it really that loud?|Is it "
        "bothering you a lot?|Does it carry that much?]",
        "[Yes, and|Yes, unfortunately|I'm afraid so, and] {why}.",
        "[I understand.|Of course.|That's fair.] [I'll|From now on I'll|I promise to] {promise}.",
        "[Thank you, I really appreciate it.|That's very kind, thanks.|Thanks for understanding.]",
        "[No problem at all.|Sorry again.|Let me know if it happens again.]"),
        "#Person1# complains about {noise} {when}, and #Person2# apologises and promises to {promise}.",
        closing=False),
    Scenario("dentist", {
        "problem": ["a toothache", "a chipped tooth", "sensitive teeth", "bleeding gums", "a lost filling",
                    "a loose crown"],
        "day": DAYS[:6], "time": DAY_TIMES,
        "treatment": ["an X-ray", "a check-up and clean", "a filling", "a quick examination", "a temporary repair"],
        "price": dollars(40, 55, 65, 80, 95, 120, 150),
        "advice": ["avoid very hot drinks", "rinse with salt water", "take a painkiller if needed",
                   "chew on the other side"]}, (
        "[I'd like an appointment|I need an appointment|I need to see the dentist] [because I have|for] {problem}.",
        "[The dentist can see you|We have a slot|There's an opening] on {day} at {time}. The dentist will "
        "[probably|likely] do {treatment}.",
        "[How much will that cost?|What's the cost?|Is it expensive?]",
        "[About|Around|It's roughly] {price}. [Until then,|Meanwhile,|Before then,] {advice}."),
        "#Person1# books a dentist appointment for {problem} on {day} at {time}, and #Person2# says {treatment} "
        "will cost about {price}."),
    Scenario("pet vet visit", {
        "pet": ["dog", "cat", "rabbit", "puppy", "kitten", "guinea pig", "parrot"],
        "symptom": ["isn't eating", "keeps scratching", "is limping", "has been sick twice", "seems very tired",
                    "has a swollen eye"],
        "time": DAY_TIMES, "bring": ["a stool sample", "its vaccination record", "a list of its food",
                                     "its usual food"]}, (
        "[My {pet} {symptom}, and I'm worried.|I'm worried because my {pet} {symptom}.|My {pet} {symptom}. Can the "
        "vet have a look?]",
        "[The vet can see your {pet}|We can fit your {pet} in|The vet has time for your {pet}] today at {time}.",
        "[Should I bring anything?|Do I need to bring anything?|Anything I should do before?]",
        "[Please bring|Just bring|Bring] {bring}[, and|. Also,] [keep it calm|keep it warm|let it rest] "
        "[until then|before the visit]."),
        "#Person1# says their {pet} {symptom}, and #Person2# books a vet visit today at {time} and asks them to "
        "bring {bring}."),
    Scenario("grocery list", {
        "a": GROCERIES, "b": GROCERIES, "c": GROCERIES,
        "shop": ["the corner shop", "the supermarket", "the market", "the farm shop"],
        "dinner": ["pasta", "a curry", "soup", "tacos", "a stir-fry", "omelettes", "a salad"],
        "budget": dollars(15, 20, 25, 30, 40)}, (
        "[I'm going to|I'm heading to|I'll pop to] {shop}. [Do we need anything?|Is there anything we need?|Need "
        "anything?]",
        "[Yes, we need {a}, {b} and {c}.|Could you get {a}, {b} and {c}?|Please pick up {a}, {b} and {c}.]",
        "[Okay.|Sure.|Got it.] [What are we having for dinner?|What's for dinner tonight?|Are we cooking tonight?]",
        "[I thought we'd make|Let's have|I'm making] {dinner}, so [don't spend more than|keep it under|try to spend "
        "less than] {budget}."),
        "#Person1# is going to {shop}, and #Person2# asks for {a}, {b} and {c} for {dinner}, spending under "
        "{budget}."),
    Scenario("flight change", {
        "flight": says("flight", ("my return flight", "their return flight"), ("my flight home", "their flight home"),
                       ("my outbound flight", "their outbound flight"),
                       ("my flight to the conference", "their flight to the conference")),
        "old": DAYS, "new": DAYS, "part": ["morning", "afternoon", "evening", "early"],
        "fee": dollars(30, 40, 50, 75, 90, 120),
        "seat": ["a window seat", "an aisle seat", "a seat near the front", "an exit row seat"]}, (
        "[I need to change {flight} from {old} to {new}.|Can I change {flight} from {old} to {new}?|I'd like to "
        "move {flight} from {old} to {new}.]",
        "[Let me check.|One moment, please.|I'll see what's available.] There's [a seat|space] on the {part} "
        "flight on {new}, [but there's a change fee of|and the change fee is] {fee}.",
        "[That's fine.|Okay, please book it.|Yes, go ahead.] [Could I have|Can I get|Is there] {seat}?",
        "[Yes, I've given you|Done, you have|Sure, I've reserved] {seat}[. Your new ticket is on its way.|.|, and "
        "the new ticket is on its way.]"),
        "#Person1# moves {flight_sum} from {old} to the {part} flight on {new}, and #Person2# charges a {fee} fee "
        "and gives {seat}."),
    Scenario("course enrolment", {
        "course": ["evening pottery", "introductory photography", "basic coding", "first aid", "creative writing",
                   "bookkeeping", "beginners' yoga", "watercolour painting"],
        "weeks": ["six", "eight", "ten", "twelve"], "day": DAYS[:5], "time": EVENING,
        "fee": dollars(60, 90, 120, 150, 180, 210),
        "need": ["a notebook", "a laptop", "comfortable clothes", "a camera", "an apron"]}, (
        "[I'd like to enrol in the {course} course.|Can I sign up for the {course} course?|Are there places left on "
        "the {course} course?]",
        "[Yes, there are a few places left.|Yes, we still have space.|There are two places left.] It runs for "
        "{weeks} weeks on {day}s at {time}.",
        "[How much is it?|What's the fee?|And the cost?] [Do I need anything?|Should I bring anything?|Is there "
        "anything I need?]",
        "[The fee is|It's|The course costs] {fee}, and [you'll need|please bring|you should bring] {need}."),
        "#Person1# enrols in the {weeks}-week {course} course on {day}s at {time}, and #Person2# says it costs {fee} "
        "and they need {need}."),
    Scenario("coffee shop order", {
        "size": ["small", "regular", "large"],
        "drink": ["latte", "cappuccino", "flat white", "hot chocolate", "green tea", "iced coffee", "mocha"],
        "milk": ["oat milk", "soy milk", "skimmed milk", "almond milk", "whole milk"],
        "snack": ["a blueberry muffin", "a croissant", "a slice of banana bread", "a cheese toastie", "a cookie"],
        "price": ["$4.20", "$5.10", "$5.75", "$6.40", "$6.95", "$7.30"], "wait": ["two", "three", "four", "five"]}, (
        "[[Can|Could] I have a {size} {drink} with {milk}, please?|I'd like a {size} {drink} with {milk}.]",
        "[Sure.|Of course.|Coming up.] [Is that to have here or to take away?|For here or to go?|Eat in or take "
        "away?]",
        "[To take away|To go|To have here], [please|thanks]. [And|Also|Oh, and] {snack}[, please.|.]",
        "[That's|That'll be|Your total is] {price}. [It'll be ready in|Give us|Please wait about] {wait} minutes."),
        "#Person1# orders a {size} {drink} with {milk} and {snack}, and #Person2# charges {price} and says it will "
        "be ready in {wait} minutes."),
    Scenario("missed parcel delivery", {
        "left": ["left at the local post office", "taken back to the depot", "left in the safe place by the back door",
                 "taken to the pick-up point at the petrol station", "left at the reception desk"],
        "day": DAYS, "again": DAYS,
        "window": ["between 9 am and noon", "in the afternoon", "before 1 pm", "after 5 pm", "between 2 and 6 pm"],
        "need": ["photo ID", "the card left at the door", "the tracking code from the message"]}, (
        "[I missed a delivery|I got a missed delivery card|A courier came while I was out] [yesterday|this "
        "morning|on {day}]. [Where is my parcel?|What happened to my parcel?|Where can I find it?]",
        "[Let me check.|One moment.|I'll look it up.] [It was|Your parcel was] {left}.",
        "[Can you deliver it again?|Could it be redelivered?|Is redelivery possible?]",
        "[Yes, we can redeliver it|Sure, it can come back|Yes, the courier can return] on {again} {window}. "
        "[You'll need|Please have|Keep] {need} ready."),
        "#Person1# missed a parcel delivery, and #Person2# says it was {left} and arranges redelivery on {again} "
        "{window}."),
    Scenario("phone plan upgrade", {
        "data": ["ten gigabytes", "twenty gigabytes", "fifty gigabytes", "unlimited data", "thirty gigabytes"],
        "price": dollars(15, 20, 25, 30, 35, 40), "months": ["six", "twelve", "twenty-four"],
        "bonus": ["free calls abroad", "a new handset at half price", "three months of free music streaming",
                  "a free phone case", "free cloud storage"]}, (
        "[I'd like to upgrade my [mobile|phone] plan.|Can I upgrade my [mobile|phone] plan?|I want to change my "
        "phone plan.] [I keep running out of data.|I need more data.|My current data isn't enough.]",
        "[We have|There's|I can offer] a plan with {data} for {price} a month on a {months}-month contract.",
        "[Does it include anything else?|Are there any extras?|What else do I get?]",
        "[Yes, it comes with|It also includes|You also get] {bonus}."),
        "#Person1# upgrades their phone plan, and #Person2# offers {data} for {price} a month on a {months}-month "
        "contract with {bonus}."),
    Scenario("museum tour booking", {
        "tour": ["guided tour", "audio tour", "family tour", "evening tour", "behind-the-scenes tour"],
        "exhib": ["the dinosaur gallery", "the ancient pottery exhibition", "the modern art wing",
                  "the space exhibition", "the local history rooms", "the costume collection"],
        "n": PEOPLE, "day": DAYS, "time": DAY_TIMES, "price": dollars(8, 10, 12, 15, 18, 20),
        "length": ["an hour", "ninety minutes", "forty-five minutes", "two hours"]}, (
        "[[Can I book|Are there places on] the {tour} [of|through] {exhib} [on|this] {day}?|I'd like to book the "
        "{tour} of {exhib} on {day}.]",
        "[Yes, there's one at|We have one starting at|There's a tour at] {time}. [How many people?|For how "
        "many?|How many of you are there?]",
        "[There are {n} of us.|We are a group of {n}.|It's for {n} people.]",
        "[That's|It costs|The price is] {price} each, and the tour [lasts about|takes around|runs for] {length}."),
        "#Person1# books the {tour} of {exhib} for {n} on {day} at {time}, and #Person2# says it costs {price} each "
        "and lasts {length}."),
    Scenario("lost property", {
        "item": ["a black umbrella", "a blue scarf", "a glasses case", "a key ring", "a green water bottle",
                 "a leather wallet", "a grey hat", "a phone charger"],
        "where": ["on the number 9 bus", "in the reading room", "at a table by the window", "in the changing room",
                  "on a park bench", "in the waiting room"],
        "when": ["yesterday afternoon", "this morning", "last night", "on Sunday"],
        "detail": ["It has a small tag on it.", "There's a scratch on one side.", "It has a white label inside.",
                   "It's quite new."],
        "found": ["was handed in this morning", "was found by staff", "came in last night",
                  "was handed in at lunchtime"],
        "collect": ["until 6 pm today", "any weekday before 5 pm", "until Friday evening", "tomorrow from 9 am"],
        "proof": ["photo ID", "a description of the contents", "proof that it is yours"]}, (
        "[I think I left|I lost|I may have left] {item} {where} {when}.",
        "[Can you describe it?|What does it look like?|Could you describe it?]",
        "{detail}",
        "[Yes, it|Good news, it|We have it. It] {found}. [You can collect it|It can be collected|It's at the front "
        "desk] {collect}, [with|if you bring] {proof}."),
        "#Person1# reports losing {item} {where}, and #Person2# says it {found} and can be collected {collect}."),
    Scenario("taxi booking", {
        "pickup": ["the station", "the hotel entrance", "the hospital entrance", "the airport",
                   "the city library"],
        "dest": ["the concert hall", "the football stadium", "the conference centre", "the old town",
                 "the ferry terminal"],
        "time": DAY_TIMES + EVENING, "n": PEOPLE[:5],
        "car": ["a silver estate car", "a black saloon", "a white people carrier", "a blue hatchback"],
        "price": dollars(14, 18, 22, 26, 32, 38, 45)}, (
        "[I need a taxi from {pickup} to {dest} [at|for] {time}.|Can I book a taxi from {pickup} to {dest} for "
        "{time}, please?|I'd like a taxi from {pickup} to {dest} at {time}.]",
        "[How many passengers?|For how many people?|How many of you?] [Any luggage?|Do you have luggage?|]",
        "[We are|There are|It's for] {n} [people|passengers][ with some bags.|, plus luggage.|.]",
        "[Booked.|That's booked.|All set.] [It will be|Look out for|Your driver will come in] {car}[, and the fare "
        "is about|. The fare should be around] {price}."),
        "#Person1# books a taxi for {n} from {pickup} to {dest} at {time}, and #Person2# sends {car} for about "
        "{price}."),
)

_ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def sample_slots(slots: dict[str, list], rng: random.Random) -> dict[str, str]:
    """Fill every slot; slots sharing one pool get distinct values, dict entries set several slots."""
    groups: dict[int, tuple[list, list[str]]] = {}
    for name, pool in slots.items():
        groups.setdefault(id(pool), (pool, []))[1].append(name)
    values: dict[str, str] = {}
    for pool, names in groups.values():
        for name, value in zip(names, rng.sample(pool, len(names))):
            if isinstance(value, dict):
                values.update(value)
            else:
                values[name] = value
    return values


def realise(template: str, values: dict[str, str], rng: random.Random) -> str:
    """Pick one alternative per ``[a|b]`` group, fill the slots and tidy spacing and capitals."""
    text = template
    while "[" in text:  # innermost groups first, so groups may nest
        text = _ALTERNATIVES.sub(lambda m: rng.choice(m.group(1).split("|")), text)
    text = " ".join(text.format(**values).split())
    return text[:1].upper() + text[1:]


def render(scenario: Scenario, rng: random.Random) -> dict[str, str]:
    """One candidate row (without id) for ``scenario``."""
    values = sample_slots(scenario.slots, rng)
    turns = [realise(t, values, rng) for t in scenario.turns]
    if rng.random() < 0.5:
        turns[0] = f"{rng.choice(GREETINGS)} {turns[0]}"
    if scenario.closing and len(turns) % 2 == 0 and len(turns) + 2 <= 8 and rng.random() < 0.5:
        turns += [realise(THANKS, values, rng), realise(WELCOME, values, rng)]
    dialogue = "\n".join(f"#Person{1 + i % 2}#: {turn}" for i, turn in enumerate(turns))
    return {"dialogue": dialogue, "summary": realise(scenario.summary, values, rng), "topic": scenario.topic}


def normalise(text: str) -> str:
    """Lower-case, remove punctuation, collapse whitespace (the leakage audit's normalisation)."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


def shingles(text: str, n: int = 5) -> frozenset[str]:
    words = normalise(text).split()
    return frozenset(" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def acceptable(row: dict[str, str], grams: frozenset[str], kept: list[frozenset[str]], summaries: set[str]) -> bool:
    """Word count in range, a new summary, and no near-duplicate of a kept dialogue."""
    if not MIN_WORDS <= len(row["dialogue"].split()) <= MAX_WORDS:
        return False
    if normalise(row["summary"]) in summaries:
        return False
    return all(jaccard(grams, other) < MAX_JACCARD for other in kept)


def generate(seed: int = SEED) -> list[dict[str, str]]:
    """All rows, shuffled and numbered; deterministic for a given seed."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    kept: list[frozenset[str]] = []
    summaries: set[str] = set()
    for scenario in SCENARIOS:
        for _ in range(ROWS_PER_SCENARIO):
            for _attempt in range(MAX_ATTEMPTS):
                row = render(scenario, rng)
                grams = shingles(row["dialogue"])
                if acceptable(row, grams, kept, summaries):
                    break
            else:
                raise RuntimeError(f"could not draw a distinct row for {scenario.topic!r}")
            rows.append(row)
            kept.append(grams)
            summaries.add(normalise(row["summary"]))
    rng.shuffle(rows)
    return [{"id": f"dt-{i:04d}", **row} for i, row in enumerate(rows, start=1)]


def to_jsonl(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON lines")
    parser.add_argument("--check", action="store_true", help="only verify that --output matches the generator")
    args = parser.parse_args(argv)
    text = to_jsonl(generate())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is out of date; run scripts/make_embedded_data.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {len(text.splitlines())} rows to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
