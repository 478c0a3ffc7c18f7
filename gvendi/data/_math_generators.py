"""Grade-school word-problem templates for the bundled math sample.

Each generator takes a seeded :class:`random.Random` and returns ``(problem, solution, answer)``. A template fixes
the *solution structure* (its steps and equations); names, objects, numbers and the problem's phrasing vary. Every
generator checks its own arithmetic with exact fractions before returning, so a wrong answer stops the build.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction

NAMES = [
    "Aisha", "Ben", "Carlos", "Dana", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jamal", "Kira", "Liam", "Mei",
    "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe",
    "Anton", "Bela", "Chen", "Dmitri", "Esme", "Farah", "Gabe", "Hana", "Ivan", "Jonas", "Keiko", "Leila", "Mateo",
    "Nadia",
]  # fmt: skip

Generated = tuple[str, str, str]


def fmt(value: Fraction | int) -> str:
    """An exact decimal string for a terminating fraction (``Fraction(9, 20)`` → ``"0.45"``)."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    digits = ""
    for _ in range(12):
        rest *= 10
        digit, rest = divmod(rest, value.denominator)
        digits += str(digit)
        if rest == 0:
            return f"{sign}{whole}.{digits}"
    raise ValueError(f"{value} has no short terminating decimal form")


def _check(answer: Fraction | int, expected: Fraction | int) -> str:
    if Fraction(answer) != Fraction(expected):
        raise AssertionError(f"arithmetic check failed: {answer} != {expected}")
    return fmt(answer)


def _two_names(rng: random.Random) -> tuple[str, str]:
    first, second = rng.sample(NAMES, 2)
    return first, second


def unit_rate(rng: random.Random) -> Generated:
    items = [
        ("notebooks", "notebook"), ("pencils", "pencil"), ("apples", "apple"), ("tickets", "ticket"),
        ("candles", "candle"), ("mugs", "mug"), ("bags of rice", "bag of rice"),
        ("bottles of juice", "bottle of juice"), ("pairs of socks", "pair of socks"),
        ("packs of cards", "pack of cards"), ("plants", "plant"), ("towels", "towel"),
    ]  # fmt: skip
    plural, _singular = rng.choice(items)
    name = rng.choice(NAMES)
    unit, count = rng.randint(2, 15), rng.randint(2, 9)
    target = rng.choice([n for n in range(3, 21) if n != count])
    price = unit * count
    problem = rng.choice(
        [
            f"{name} pays ${price} for {count} {plural}. At the same price, how much would {target} {plural} cost?",
            f"At a market, {count} {plural} sell for ${price}. How many dollars do {target} {plural} cost?",
            f"If {count} {plural} cost ${price} in total, what is the cost of {target} {plural}?",
            f"A shop charges ${price} for {count} {plural}. {name} wants to buy {target} {plural}. "
            f"How much will {name} pay?",
        ]
    )
    total = unit * target
    answer = _check(total, Fraction(price, count) * target)
    solution = (
        f"First find the price of one item: ${price} / {count} = ${unit}.\n"
        f"Then multiply the price of one item by the number of items wanted: {target} * ${unit} = ${total}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def percent_discount(rng: random.Random) -> Generated:
    items = [
        "jacket",
        "bicycle",
        "lamp",
        "backpack",
        "pair of boots",
        "tablet",
        "guitar",
        "coffee maker",
        "desk",
        "tent",
    ]
    item = rng.choice(items)
    name = rng.choice(NAMES)
    while True:
        price = rng.choice(range(20, 401, 10))
        pct = rng.choice([10, 15, 20, 25, 30, 40, 50, 60, 75])
        if price * pct % 100 == 0:
            break
    problem = rng.choice(
        [
            f"A {item} normally costs ${price}. It is on sale for {pct}% off. What is the sale price?",
            f"{name} buys a {item} priced at ${price} with a {pct}% discount coupon. How much does {name} pay?",
            f"During a sale, every {item} is marked down by {pct}%. If the original price is ${price}, "
            f"what is the new price in dollars?",
            f"The regular price of a {item} is ${price}. The store takes {pct}% off the regular price. "
            f"How much does the {item} cost now?",
        ]
    )
    discount = price * pct // 100
    final = price - discount
    answer = _check(final, Fraction(price) * (1 - Fraction(pct, 100)))
    solution = (
        f"The discount is {pct}% of ${price}: {price} * {pct} / 100 = ${discount}.\n"
        f"Subtract the discount from the original price: ${price} - ${discount} = ${final}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


_WORK_PAIRS = [(a, b) for a in range(2, 61) for b in range(a, 61) if (a * b) % (a + b) == 0 and a * b > a + b]


def work_rate(rng: random.Random) -> Generated:
    jobs = ["paint the fence", "clean the house", "mow the lawn", "sort the mail", "wash all the windows",
            "pack the boxes", "weed the garden", "stack the firewood"]  # fmt: skip
    job = rng.choice(jobs)
    first, second = _two_names(rng)
    a, b = rng.choice(_WORK_PAIRS)
    if rng.random() < 0.5:
        a, b = b, a
    problem = rng.choice(
        [
            f"{first} can {job} in {a} hours, and {second} can {job} in {b} hours. "
            f"Working together, how many hours will it take them to {job}?",
            f"Working alone, {first} needs {a} hours to {job}. {second} needs {b} hours for the same job. "
            f"How long does it take if they work together?",
            f"It takes {first} {a} hours to {job} and {second} {b} hours. If both work at once, "
            f"how many hours will the job take?",
        ]
    )
    together = Fraction(1, a) + Fraction(1, b)
    hours = 1 / together
    answer = _check(hours, Fraction(a * b, a + b))
    solution = (
        f"In one hour the first worker does 1/{a} of the job and the second worker does 1/{b} of the job.\n"
        f"Together they do 1/{a} + 1/{b} = {together.numerator}/{together.denominator} of the job per hour.\n"
        f"The whole job takes 1 / ({together.numerator}/{together.denominator}) = {fmt(hours)} hours.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def age_multiple(rng: random.Random) -> Generated:
    relatives = ["brother", "sister", "cousin", "nephew", "niece", "son", "daughter"]
    older, younger = _two_names(rng)
    relative = rng.choice(relatives)
    young_age, times, years = rng.randint(2, 15), rng.randint(2, 5), rng.randint(2, 10)
    total = (times + 1) * young_age + 2 * years
    problem = rng.choice(
        [
            f"{older} is {times} times as old as {older}'s {relative} {younger}. In {years} years, the sum of "
            f"their ages will be {total}. How old is {younger} now?",
            f"The age of {older} is {times} times the age of {younger}. {years} years from now their ages will "
            f"add up to {total}. Find {younger}'s current age.",
            f"Right now {older}'s age is {times} times the age of {younger}, {older}'s {relative}. After {years} "
            "years "
            f"their combined age will be {total}. What is {younger}'s age today?",
        ]
    )
    answer = _check(young_age, Fraction(total - 2 * years, times + 1))
    solution = (
        f"Let the younger age now be x, so the older age is {times}x.\n"
        f"In {years} years their ages will be x + {years} and {times}x + {years}.\n"
        f"So (x + {years}) + ({times}x + {years}) = {total}, which gives {times + 1}x + {2 * years} = {total}.\n"
        f"Then {times + 1}x = {total - 2 * years}, so x = {young_age}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def rectangle_area(rng: random.Random) -> Generated:
    things = [
        ("garden", "meters"), ("room", "meters"), ("playground", "meters"), ("poster", "centimeters"),
        ("table top", "decimeters"), ("parking lot", "meters"), ("photo", "centimeters"), ("field", "meters"),
    ]  # fmt: skip
    thing, unit = rng.choice(things)
    length = rng.randint(5, 40)
    width = rng.randint(2, length - 1)
    perimeter = 2 * (length + width)
    problem = rng.choice(
        [
            f"A rectangular {thing} has a perimeter of {perimeter} {unit}. Its length is {length} {unit}. "
            f"What is its area in square {unit}?",
            f"The perimeter of a rectangular {thing} is {perimeter} {unit}, and one side is {length} {unit} long. "
            f"Find the area of the {thing}.",
            f"{rng.choice(NAMES)} measures a rectangular {thing}: the length is {length} {unit} and the distance "
            f"all the way around is {perimeter} {unit}. How many square {unit} does the {thing} cover?",
        ]
    )
    half = perimeter // 2
    area = length * width
    answer = _check(area, length * (Fraction(perimeter, 2) - length))
    solution = (
        f"Half of the perimeter is {perimeter} / 2 = {half}, which is the length plus the width.\n"
        f"The width is {half} - {length} = {width}.\n"
        f"The area is length times width: {length} * {width} = {area}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def mixture_concentration(rng: random.Random) -> Generated:
    solutes = ["salt", "sugar", "alcohol", "acid", "bleach", "syrup"]
    solute = rng.choice(solutes)
    name = rng.choice(NAMES)
    while True:
        pct_a, pct_b = rng.sample(range(5, 95, 5), 2)
        vol_a, vol_b = rng.randint(1, 20), rng.randint(1, 20)
        if (vol_a * pct_a + vol_b * pct_b) % (vol_a + vol_b) == 0:
            break
    problem = rng.choice(
        [
            f"{name} mixes {vol_a} liters of a {pct_a}% {solute} solution with {vol_b} liters of a {pct_b}% "
            f"{solute} solution. What is the percent concentration of {solute} in the mixture?",
            f"A lab combines {vol_a} L of solution that is {pct_a}% {solute} and {vol_b} L of solution that is "
            f"{pct_b}% {solute}. What percent of the new mixture is {solute}?",
            f"Tank A holds {vol_a} liters of {pct_a}% {solute} solution and tank B holds {vol_b} liters of "
            f"{pct_b}% {solute} solution. Both are poured together. Find the {solute} percentage of the result.",
        ]
    )
    pure_a, pure_b = Fraction(vol_a * pct_a, 100), Fraction(vol_b * pct_b, 100)
    pure, volume = pure_a + pure_b, vol_a + vol_b
    concentration = pure / volume * 100
    answer = _check(concentration, Fraction(vol_a * pct_a + vol_b * pct_b, vol_a + vol_b))
    solution = (
        f"The first solution contains {vol_a} * {pct_a} / 100 = {fmt(pure_a)} liters of the pure substance.\n"
        f"The second solution contains {vol_b} * {pct_b} / 100 = {fmt(pure_b)} liters of the pure substance.\n"
        f"The mixture has {fmt(pure_a)} + {fmt(pure_b)} = {fmt(pure)} liters of the pure substance "
        f"in {vol_a} + {vol_b} = {volume} liters.\n"
        f"The concentration is {fmt(pure)} / {volume} * 100 = {fmt(concentration)}%.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def average_speed(rng: random.Random) -> Generated:
    movers = [("drives", "car", 40, 100), ("cycles", "bike", 10, 30), ("rides a train", "train", 60, 150),
              ("sails", "boat", 10, 40), ("runs", "trail", 6, 15), ("rides a bus", "bus", 30, 80)]  # fmt: skip
    verb, _, low, high = rng.choice(movers)
    name = rng.choice(NAMES)
    while True:
        speed_a, speed_b = rng.randint(low, high), rng.randint(low, high)
        time_a, time_b = rng.randint(2, 6), rng.randint(2, 6)
        if speed_a != speed_b and (speed_a * time_a + speed_b * time_b) % (time_a + time_b) == 0:
            break
    problem = rng.choice(
        [
            f"{name} {verb} at {speed_a} km/h for {time_a} hours and then at {speed_b} km/h for {time_b} hours. "
            f"What is {name}'s average speed for the whole trip in km/h?",
            f"On a trip, {name} {verb} for {time_a} hours at {speed_a} km/h, then for {time_b} hours at "
            f"{speed_b} km/h. Find the average speed over the entire journey.",
            f"For the first {time_a} hours {name} {verb} at {speed_a} kilometers per hour; for the next {time_b} "
            f"hours the speed is {speed_b} kilometers per hour. What is the average speed?",
        ]
    )
    dist_a, dist_b = speed_a * time_a, speed_b * time_b
    distance, hours = dist_a + dist_b, time_a + time_b
    answer = _check(Fraction(distance, hours), Fraction(speed_a * time_a + speed_b * time_b, time_a + time_b))
    solution = (
        f"Distance is speed times time, so the first part covers {speed_a} * {time_a} = {dist_a} km "
        f"and the second part covers {speed_b} * {time_b} = {dist_b} km.\n"
        f"The total distance is {dist_a} + {dist_b} = {distance} km and the total time is "
        f"{time_a} + {time_b} = {hours} hours.\n"
        f"Average speed is total distance over total time: {distance} / {hours} = {answer} km/h.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def sharing_remainder(rng: random.Random) -> Generated:
    items = ["marbles", "stickers", "cookies", "crayons", "stamps", "beads", "cards", "chocolates", "seeds", "coins"]
    things = rng.choice(items)
    name = rng.choice(NAMES)
    groups, each = rng.randint(3, 12), rng.randint(2, 20)
    left = rng.randint(1, groups - 1)
    total = groups * each + left
    problem = rng.choice(
        [
            f"{name} has {total} {things} and shares them equally among {groups} friends, giving each friend as "
            f"many as possible. How many {things} are left over?",
            f"A teacher splits {total} {things} into {groups} equal piles, making the piles as large as possible. "
            f"How many {things} remain?",
            f"{total} {things} are dealt out evenly to {groups} children until no child can get another. "
            f"How many {things} are not given out?",
        ]
    )
    used = groups * each
    answer = _check(left, total % groups)
    solution = (
        f"Divide {total} by {groups}: {groups} * {each} = {used} is the largest multiple of {groups} "
        f"that is not more than {total}.\n"
        f"So each share gets {each}.\n"
        f"The remainder is {total} - {used} = {left}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def consecutive_integers(rng: random.Random) -> Generated:
    count, smallest = rng.randint(3, 7), rng.randint(1, 60)
    triangle = count * (count - 1) // 2
    total = count * smallest + triangle
    name = rng.choice(NAMES)
    problem = rng.choice(
        [
            f"The sum of {count} consecutive integers is {total}. What is the largest of these integers?",
            f"{count} consecutive whole numbers add up to {total}. Find the biggest one.",
            f"{name} wrote {count} consecutive numbers on the board, and their sum is {total}. "
            f"What is the greatest number {name} wrote?",
        ]
    )
    largest = smallest + count - 1
    answer = _check(largest, Fraction(total - triangle, count) + count - 1)
    solution = (
        f"Let the smallest integer be m. The integers are m, m + 1, ..., m + {count - 1}.\n"
        f"Their sum is {count}m + (0 + 1 + ... + {count - 1}) = {count}m + {triangle} = {total}.\n"
        f"So {count}m = {total - triangle}, and m = {smallest}.\n"
        f"The largest integer is m + {count - 1} = {largest}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def change_from_purchase(rng: random.Random) -> Generated:
    goods = ["sandwiches", "comic books", "bottles of water", "pens", "muffins", "bus tickets", "flower pots",
             "light bulbs", "bars of soap", "balloons"]  # fmt: skip
    first_item, second_item = rng.sample(goods, 2)
    name = rng.choice(NAMES)
    count_a, count_b = rng.randint(2, 8), rng.randint(2, 8)
    price_a, price_b = rng.randint(1, 12), rng.randint(1, 12)
    cost_a, cost_b = count_a * price_a, count_b * price_b
    cost = cost_a + cost_b
    bill = min(b for b in (20, 50, 100, 200) if b > cost)
    problem = rng.choice(
        [
            f"{name} buys {count_a} {first_item} at ${price_a} each and {count_b} {second_item} at ${price_b} each. "
            f"{name} pays with a ${bill} bill. How much change does {name} get?",
            f"At the store, {count_a} {first_item} cost ${price_a} apiece and {count_b} {second_item} cost "
            f"${price_b} apiece. {name} buys them all and hands over ${bill}. What is the change?",
            f"{name} has a ${bill} bill and spends it on {count_a} {first_item} (${price_a} each) and "
            f"{count_b} {second_item} (${price_b} each). How many dollars come back as change?",
        ]
    )
    change = bill - cost
    answer = _check(change, bill - (count_a * price_a + count_b * price_b))
    solution = (
        f"The first kind of item costs {count_a} * ${price_a} = ${cost_a}.\n"
        f"The second kind of item costs {count_b} * ${price_b} = ${cost_b}.\n"
        f"The total cost is ${cost_a} + ${cost_b} = ${cost}.\n"
        f"The change is ${bill} - ${cost} = ${change}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def simple_interest(rng: random.Random) -> Generated:
    name = rng.choice(NAMES)
    principal = rng.choice(range(200, 5001, 100))
    rate, years = rng.randint(2, 12), rng.randint(2, 8)
    problem = rng.choice(
        [
            f"{name} deposits ${principal} in a savings account that pays {rate}% simple interest per year. "
            f"How much money will be in the account after {years} years?",
            f"A loan of ${principal} charges {rate}% simple interest each year. What is the total amount owed "
            f"after {years} years?",
            f"{name} invests ${principal} at a simple interest rate of {rate}% per year for {years} years. "
            f"What is the investment worth at the end?",
        ]
    )
    yearly = principal * rate // 100
    interest = yearly * years
    total = principal + interest
    answer = _check(total, principal * (1 + Fraction(rate * years, 100)))
    solution = (
        f"The interest for one year is {rate}% of ${principal}: {principal} * {rate} / 100 = ${yearly}.\n"
        f"Over {years} years the interest is {years} * ${yearly} = ${interest}.\n"
        f"The final amount is the principal plus the interest: ${principal} + ${interest} = ${total}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def ratio_split(rng: random.Random) -> Generated:
    first, second = _two_names(rng)
    small, large = sorted(rng.sample(range(1, 10), 2))
    part = rng.randint(2, 40)
    parts = small + large
    total = part * parts
    things = rng.choice(["$", "marbles", "stickers", "points", "acorns"])
    amount = (lambda n: f"${n}") if things == "$" else (lambda n: f"{n} {things}")
    problem = rng.choice(
        [
            f"{first} and {second} share {amount(total)} in the ratio {small}:{large}. "
            f"How much does {second} receive?",
            f"{amount(total)} is divided between {first} and {second} so that their shares are in the ratio "
            f"{small} to {large}. What is {second}'s share?",
            f"{first} and {second} split {amount(total)}, with {first} getting {small} parts for every {large} "
            f"parts that {second} gets. How much does {second} get?",
        ]
    )
    share = large * part
    answer = _check(share, Fraction(total * large, parts))
    solution = (
        f"The ratio {small}:{large} has {small} + {large} = {parts} equal parts.\n"
        f"One part is {total} / {parts} = {part}.\n"
        f"The larger share is {large} parts: {large} * {part} = {share}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def missing_score(rng: random.Random) -> Generated:
    name = rng.choice(NAMES)
    kind = rng.choice(["quizzes", "tests", "games", "exams", "rounds"])
    while True:
        known = rng.randint(3, 5)
        scores = [rng.randint(60, 100) for _ in range(known)]
        target = rng.randint(70, 95)
        needed = target * (known + 1) - sum(scores)
        if 40 <= needed <= 100:
            break
    listed = ", ".join(str(s) for s in scores[:-1]) + f" and {scores[-1]}"
    problem = rng.choice(
        [
            f"{name} scored {listed} on {known} {kind}. What score does {name} need on the next one "
            f"to have an average of {target}?",
            f"After {known} {kind}, {name}'s scores are {listed}. What must {name} score in one more to make "
            f"the mean exactly {target}?",
            f"The scores {listed} are {name}'s results in {known} {kind}. Which score in the next one brings the "
            f"average to {target}?",
        ]
    )
    current = sum(scores)
    goal = target * (known + 1)
    answer = _check(needed, goal - current)
    solution = (
        f"An average of {target} over {known + 1} scores needs a total of {target} * {known + 1} = {goal}.\n"
        f"The scores so far add up to {' + '.join(str(s) for s in scores)} = {current}.\n"
        f"The missing score is {goal} - {current} = {needed}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def fraction_remaining(rng: random.Random) -> Generated:
    name = rng.choice(NAMES)
    first_buy, second_buy = rng.sample(["books", "lunch", "a gift", "groceries", "a toy", "a movie ticket",
                                        "paint", "shoes"], 2)  # fmt: skip
    a, b = rng.randint(2, 6), rng.randint(2, 6)
    unit = rng.randint(1, 12)
    money = a * b * unit
    problem = rng.choice(
        [
            f"{name} had ${money}. {name} spent 1/{a} of it on {first_buy} and then 1/{b} of the remaining money "
            f"on {second_buy}. How much money is left?",
            f"With ${money} in a wallet, {name} first uses 1/{a} of the money for {first_buy}, then 1/{b} of what "
            f"is left for {second_buy}. How many dollars remain?",
            f"{name} starts with ${money}, pays 1/{a} of it for {first_buy}, and afterwards pays 1/{b} of the rest "
            f"for {second_buy}. What amount does {name} still have?",
        ]
    )
    spent_a = money // a
    rest_a = money - spent_a
    spent_b = rest_a // b
    left = rest_a - spent_b
    answer = _check(left, money * (1 - Fraction(1, a)) * (1 - Fraction(1, b)))
    solution = (
        f"The first purchase uses ${money} / {a} = ${spent_a}, leaving ${money} - ${spent_a} = ${rest_a}.\n"
        f"The second purchase uses ${rest_a} / {b} = ${spent_b}.\n"
        f"The money left is ${rest_a} - ${spent_b} = ${left}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


def heads_and_legs(rng: random.Random) -> Generated:
    pairs = [
        ("chickens", "cows", 2, 4, "legs", "animals"), ("ducks", "goats", 2, 4, "legs", "animals"),
        ("bicycles", "tricycles", 2, 3, "wheels", "vehicles"), ("geese", "sheep", 2, 4, "legs", "animals"),
        ("motorbikes", "cars", 2, 4, "wheels", "vehicles"), ("stools", "chairs", 3, 4, "legs", "seats"),
    ]  # fmt: skip
    few, many, few_legs, many_legs, part, heads_word = rng.choice(pairs)
    count_few, count_many = rng.randint(2, 30), rng.randint(2, 30)
    heads = count_few + count_many
    legs = count_few * few_legs + count_many * many_legs
    place = rng.choice(["a farm", "a yard", "a barn", "a shed", "a lot", "a hall"])
    problem = rng.choice(
        [
            f"There are {few} and {many} in {place}: {heads} {heads_word} with {legs} {part} in total. "
            f"How many {many} are there?",
            f"{rng.choice(NAMES)} counts {heads} {heads_word} in {place}, all {few} or {many}, and {legs} {part}. "
            f"How many of them are {many}?",
            f"In {place} there are only {few} and {many}. Together they have {legs} {part}, and there are {heads} "
            f"{heads_word}. Find the number of {many}.",
        ]
    )
    base = heads * few_legs
    extra = legs - base
    step = many_legs - few_legs
    answer = _check(Fraction(extra, step), count_many)
    solution = (
        f"If all {heads} were of the kind with {few_legs} each, the count would be {heads} * {few_legs} = {base}.\n"
        f"The real count is {legs}, which is {legs} - {base} = {extra} more.\n"
        f"Each one of the other kind adds {many_legs} - {few_legs} = {step} more.\n"
        f"So the other kind numbers {extra} / {step} = {answer}.\n"
        f"\\boxed{{{answer}}}"
    )
    return problem, solution, answer


TEMPLATES: dict[str, Callable[[random.Random], Generated]] = {
    "age_multiple": age_multiple,
    "average_speed": average_speed,
    "change_from_purchase": change_from_purchase,
    "consecutive_integers": consecutive_integers,
    "fraction_remaining": fraction_remaining,
    "heads_and_legs": heads_and_legs,
    "missing_score": missing_score,
    "mixture_concentration": mixture_concentration,
    "percent_discount": percent_discount,
    "ratio_split": ratio_split,
    "rectangle_area": rectangle_area,
    "sharing_remainder": sharing_remainder,
    "simple_interest": simple_interest,
    "unit_rate": unit_rate,
    "work_rate": work_rate,
}
