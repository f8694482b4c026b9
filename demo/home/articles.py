"""The demo's sample articles, added by ``manage.py setup_demo`` (by slug).

Twenty short articles on gardening, the night sky, cooking, cycling and the
house. Several sit on neighbouring topics (bike lights and winter cycling,
punctures and tubeless tyres, a grow lamp and seedlings) and some carry
product codes, names and figures (the LX-400 light, the GL-2200 grow lamp),
so that ``demo/questions.jsonl`` can measure how well each search mode tells
them apart (docs/retrieval.md, "Measuring retrieval").
"""

ARTICLES = [
    {
        "slug": "tomatoes-on-a-balcony",
        "title": "Growing tomatoes on a balcony",
        "intro": "Six hours of sun, a big pot and steady watering are most of it.",
        "body": (
            "<p>Tomatoes are one of the most rewarding crops for a balcony. A "
            "single plant in a 30-litre pot can keep you in fruit from July "
            "until the first cold nights of autumn.</p>"
            "<p>Choose the variety for the space. Bush (determinate) tomatoes "
            "and most cherry tomatoes stay compact and need little pruning; "
            "cordon varieties grow tall and want a cane, with the side shoots "
            "pinched out every week so the plant puts its energy into "
            "fruit.</p>"
            "<p>Give them at least six hours of direct sun, ideally on a south "
            "or west facing balcony. Water deeply and regularly: a pot that "
            "swings between dust-dry and soaked gives split fruit and blossom "
            "end rot. Once the first flowers have set, feed every week with a "
            "high-potassium tomato feed.</p>"
            "<p>Balconies are windy. Tie the stem loosely to its stake with "
            "soft string as it grows, and move the pot against a wall if a "
            "storm is forecast.</p>"
        ),
    },
    {
        "slug": "a-compost-heap-that-works",
        "title": "A compost heap that works",
        "intro": "Balance greens and browns, add air, and wait.",
        "body": (
            "<p>Compost is what happens when bacteria, fungi and worms are "
            "given the right mix of food, air and water. Your job is only to "
            "keep that mix right.</p>"
            "<p>Mix roughly equal volumes of greens and browns. Greens are "
            "wet and rich in nitrogen: vegetable peelings, grass clippings, "
            "coffee grounds. Browns are dry and rich in carbon: torn "
            "cardboard, autumn leaves, straw and woody prunings cut small.</p>"
            "<p>A heap that smells sour or slimy has too many greens and too "
            "little air: add browns and turn it with a fork. A heap that stays "
            "dry and cold needs water and more greens. Turning it every few "
            "weeks speeds everything up.</p>"
            "<p>After six months to a year the bottom of the heap is dark, "
            "crumbly and smells of a forest floor. Spread it on the beds in "
            "spring. Keep meat, dairy and cooked food out of an open heap, or "
            "the rats will find it before the worms do.</p>"
        ),
    },
    {
        "slug": "watching-the-perseids",
        "title": "Watching the Perseid meteor shower",
        "intro": "Every August the Earth crosses the dust of comet Swift-Tuttle.",
        "body": (
            "<p>The Perseids are the most reliable meteor shower of the "
            "northern summer. From mid-July to late August the Earth passes "
            "through the trail of dust left by comet Swift-Tuttle, and the "
            "grains burn up high in the atmosphere as streaks of light.</p>"
            "<p>The shower peaks around the 12th and 13th of August. Under a "
            "truly dark sky an observer can see fifty or more meteors an hour "
            "at the peak, fewer from town or when a bright Moon is up. The "
            "best hours are after midnight, when the radiant in the "
            "constellation Perseus climbs high in the north-east.</p>"
            "<p>You need no telescope or binoculars: they show too little sky. "
            "Lie back on a reclining chair, look about halfway up, and give "
            "your eyes twenty to thirty minutes to adapt to the dark. Every "
            "glance at a phone screen undoes that, so use a red torch and dress "
            "warmly: even August nights get cold when you keep still.</p>"
        ),
    },
    {
        "slug": "weeknight-mushroom-risotto",
        "title": "A weeknight mushroom risotto",
        "intro": "Twenty minutes of stirring for a dish that tastes of much more.",
        "body": (
            "<p>Risotto is less work than its reputation. What it asks for is "
            "attention for about twenty minutes, and a pot of hot stock on the "
            "next burner.</p>"
            "<p>Soften a finely chopped onion in butter and olive oil without "
            "letting it colour. Add the rice, arborio or carnaroli, about 80 "
            "grams a person, and stir for a minute or two until the grains "
            "turn translucent at the edges. Pour in a splash of dry white wine "
            "and let it bubble away.</p>"
            "<p>Now add the hot stock a ladle at a time, stirring often and "
            "waiting until each ladle is almost absorbed before the next. The "
            "stirring rubs starch from the grains, and that starch is what "
            "makes the risotto creamy without any cream.</p>"
            "<p>Meanwhile fry sliced mushrooms in a hot, wide pan in batches "
            "so they brown instead of stewing, with garlic and thyme at the "
            "end. After 16 to 18 minutes the rice should be tender with a "
            "little bite. Take it off the heat, stir in the mushrooms, a knob "
            "of cold butter and a handful of grated Parmesan, cover and rest "
            "for two minutes. It should flow slowly across the plate.</p>"
        ),
    },
    {
        "slug": "cycling-to-work-in-winter",
        "title": "Cycling to work through the winter",
        "intro": "Lights, mudguards and a little more time to stop.",
        "body": (
            "<p>Commuting by bike does not have to end when the clocks go "
            "back. Most winter riding is simply riding in the dark and the "
            "wet, and both are easy to prepare for.</p>"
            "<p>Fit a white light at the front and a red one at the back, and "
            "keep them charged: you will ride home in the dark for months. "
            "Full mudguards keep road spray off your back and your feet, and "
            "off the chain.</p>"
            "<p>Dress in layers you can open as you warm up: a windproof "
            "jacket, proper gloves and something over your ears matter more "
            "than a thick coat. Let a little air out of the tyres for more "
            "grip on wet roads, and treat painted lines, metal covers and wet "
            "leaves as if they were ice.</p>"
            "<p>Brakes work less well in the rain, rim brakes especially, so "
            "start braking earlier. After a ride on salted roads, rinse the "
            "bike and oil the chain, or it will rust within a week.</p>"
        ),
    },
    {
        "slug": "fixing-a-puncture",
        "title": "Fixing a puncture at the roadside",
        "intro": "Find what caused it before you fit the new inner tube.",
        "body": (
            "<p>A flat tyre is the most common repair on a bike and takes ten "
            "minutes once you have done it a few times. Carry two tyre "
            "levers, a spare inner tube or a patch kit, and a pump.</p>"
            "<p>Take the wheel out and let all the air out of the tube. Hook a "
            "tyre lever under the edge of the tyre, lever it over the rim, and "
            "run the second lever around until one side of the tyre is off. "
            "Pull out the tube, valve last.</p>"
            "<p>Before anything else, find the cause. Run your fingers slowly "
            "around the inside of the tyre to find the thorn or the sliver of "
            "glass that is still there; if you miss it, the new tube will go "
            "flat within a mile.</p>"
            "<p>Put a little air in the new tube so it holds its shape, push "
            "the valve through the rim and tuck the tube into the tyre. Work "
            "the tyre back onto the rim with your thumbs rather than the "
            "levers, which can pinch the tube. Check that the tube is not "
            "caught under the tyre anywhere, then pump it up to the pressure "
            "printed on the sidewall.</p>"
        ),
    },
    {
        "slug": "bike-lights-lx-400",
        "title": "Choosing bike lights: what the numbers mean",
        "intro": (
            "Lumens, battery hours and the road-legal mark, with the LX-400 as "
            "an example."
        ),
        "body": (
            "<p>Bike light boxes are covered in numbers, and only some of them matter."
            " Take the Lumo LX-400, a typical commuter front light: 400 lumens on its "
            "highest setting, a 2,500 mAh battery charged over USB-C, and a claimed "
            "1.5 hours at full power or 12 hours flashing.</p><p>Lumens measure all "
            "the light a lamp puts out, not how well it lights the road. On lit city "
            "streets 200 to 400 lumens is plenty to be seen; on an unlit country lane "
            "you want 600 or more, in a beam shaped like a car headlight, with a sharp"
            " cut-off so that you do not dazzle oncoming drivers. In Germany a front "
            "light must carry the StVZO approval mark, a wavy line and a K number, to "
            "be road legal; the LX-400 has it.</p><p>Battery figures are measured at "
            "room temperature. In frost a lithium cell gives a third less, so a light "
            "claiming 1.5 hours may die after an hour on a January evening. Charge it "
            "every night and carry a small spare, such as the 30-lumen LX-30 clip "
            "light.</p><p>At the back, a red light of 50 to 100 lumens that can also "
            "be seen from the side keeps you visible at junctions. The matching LX-R80"
            " rear light gives 80 lumens and runs for 10 hours flashing.</p>"
        ),
    },
    {
        "slug": "herbs-under-a-grow-lamp",
        "title": "Kitchen herbs under a grow lamp in winter",
        "intro": "Basil in January, with the GL-2200 LED bar and a timer.",
        "body": (
            "<p>From November to February a north-facing kitchen windowsill gets too "
            "little light for basil, and the plants grow tall, pale and floppy. A "
            "small LED grow lamp fixes that. We used the Verda GL-2200, a 22-watt "
            "full-spectrum bar that clips under a shelf; its name comes from its "
            "output of 2,200 lumens.</p><p>Hang the lamp 20 to 30 centimetres above "
            "the leaves and raise it as the plants grow. Closer scorches the tips; "
            "further away the light falls off fast, with the square of the distance. A"
            " timer matters more than the lamp: 14 to 16 hours of light a day, then "
            "darkness, because plants need the night too. The GL-2200 has a built-in "
            "timer with 8, 12 and 16 hour settings.</p><p>Basil, coriander and parsley"
            " all do well; chives and mint barely need the help. Sow a pinch of seed "
            "every three weeks in small pots of peat-free compost, so that there is "
            "always a pot ready to cut. Water from below, standing the pot in a saucer"
            " for ten minutes, and pinch out the tops of basil to keep it "
            "bushy.</p><p>At 22 watts for 16 hours a day, the lamp uses about 0.35 kWh"
            " a day, roughly 11 kWh a month.</p>"
        ),
    },
    {
        "slug": "starting-seeds-indoors",
        "title": "Starting vegetable seeds indoors in early spring",
        "intro": (
            "Warmth to germinate, light to grow, and a week or two of hardening off."
        ),
        "body": (
            "<p>Tomatoes, peppers and aubergines need a longer season than a northern "
            "summer gives them, so they are started indoors in February or March, six "
            "to eight weeks before the last frost.</p><p>Sow into small cells or a "
            "seed tray of fine seed compost, press the seeds in lightly and cover them"
            " with a thin layer of vermiculite. Most need warmth to germinate: 20 to "
            "25 °C for tomatoes, a little more for peppers. A heated propagator or the"
            " top of the fridge works; a cold windowsill does not. Cover the tray to "
            "keep the surface moist, and take the cover off as soon as the first "
            "shoots appear.</p><p>Seedlings that stretch towards the window on long "
            "thin stems are short of light. Turn the tray every day or put them under "
            "a lamp. When the first true leaves appear, after the two round seed "
            "leaves, prick them out into their own pots, holding them by a leaf, never"
            " by the stem.</p><p>Before they go outside, harden them off: for a week "
            "or two, put them out during the day and bring them in at night, so that "
            "they get used to wind and cold gradually.</p>"
        ),
    },
    {
        "slug": "choosing-a-first-telescope",
        "title": "Choosing a first telescope",
        "intro": (
            "Aperture matters more than magnification: an 8-inch Dobsonian is a "
            "fine start."
        ),
        "body": (
            "<p>The most important number on a telescope is its aperture, the diameter"
            " of the main lens or mirror, because it decides how much light is "
            "gathered and how much detail can be seen. Magnification matters far less:"
            " a box that promises 600x is a warning sign.</p><p>For a first "
            "instrument, many astronomers recommend a 200 mm (8 inch) Dobsonian "
            "reflector such as the Stellar D-200: a simple tube on a rocking base, "
            "with no motors to set up. At around 450 euros it shows Saturn's rings and"
            " the Cassini division, the cloud belts and four large moons of Jupiter, "
            "and hundreds of star clusters and galaxies. Its focal ratio of f/6 is "
            "forgiving of cheap eyepieces.</p><p>A small refractor of 80 mm or so is "
            "lighter and never needs its optics aligned, which suits a balcony or "
            "travel. A computerised GoTo mount finds objects for you, but needs power "
            "and a careful alignment every evening.</p><p>Start with the two eyepieces"
            " in the box, a 25 mm for finding things and a 10 mm for planets, and a "
            "planisphere. Let the telescope cool outside for half an hour before "
            "observing, or the warm air inside the tube will blur the view.</p>"
        ),
    },
    {
        "slug": "spotting-the-space-station",
        "title": "Spotting the International Space Station",
        "intro": (
            "A steady, bright light crossing the sky in a few minutes, just after dusk."
        ),
        "body": (
            "<p>The International Space Station is the third brightest object in the "
            "night sky after the Moon and Venus, and it can be seen with the naked eye"
            " from almost anywhere. It orbits about 400 kilometres up and circles the "
            "Earth every 92 minutes, at 28,000 km/h.</p><p>You see it because it "
            "reflects sunlight, so a pass is visible only in the hour or two after "
            "sunset or before sunrise, when the sky around you is dark but the "
            "station, high above, is still in sunshine. It looks like a steady, very "
            "bright white star moving smoothly across the sky; it does not blink, "
            "which is how you tell it from an aircraft. A good pass lasts four to six "
            "minutes.</p><p>Pass times depend on where you are. NASA's Spot the "
            "Station service and websites such as Heavens-Above list them days ahead, "
            "with the direction the station will appear from, its highest point and "
            "where it will vanish. Often it fades out in mid-sky as it enters the "
            "Earth's shadow.</p><p>With a phone on a tripod, a long exposure of ten to"
            " twenty seconds records the pass as a bright line across the stars.</p>"
        ),
    },
    {
        "slug": "first-sourdough-loaf",
        "title": "Baking a first sourdough loaf",
        "intro": (
            "A lively starter, 70 % hydration, a night in the fridge and a hot pot."
        ),
        "body": (
            "<p>A sourdough starter is flour and water in which wild yeast and lactic "
            "acid bacteria live. Feed it every day with equal weights of flour and "
            "water and, after a week or so, it doubles within six hours of a feed: "
            "then it is ready to bake with.</p><p>For one loaf, mix 500 g of strong "
            "white bread flour, 350 g of water (70 % hydration), 100 g of active "
            "starter and 10 g of salt. Leave it for half an hour, then over the next "
            "two hours give it four sets of stretches and folds: pull one side of the "
            "dough up and fold it over, turn the bowl and repeat. Let it rise at room "
            "temperature until it has grown by about half, four to six hours depending"
            " on the warmth of the kitchen.</p><p>Shape it into a tight ball, put it "
            "seam side up in a floured basket and leave it in the fridge overnight. "
            "The cold slows the yeast and deepens the flavour.</p><p>Bake it straight "
            "from the fridge in a cast-iron pot preheated to 250 °C: 20 minutes with "
            "the lid on, to trap the steam, then 20 to 25 minutes without it at 230 "
            "°C, until the crust is deep brown. Let it cool for an hour before "
            "cutting.</p>"
        ),
    },
    {
        "slug": "stock-from-a-roast-chicken",
        "title": "Making stock from a roast chicken",
        "intro": "The carcass, a few vegetables and three hours at a bare simmer.",
        "body": (
            "<p>After a Sunday roast, the carcass is worth more than the bin. Simmered"
            " for a few hours, it gives a litre or two of stock that makes soups, "
            "gravy and risotto far better than a cube does.</p><p>Break the carcass up"
            " and put it in a large pot with an onion cut in half (the skin gives "
            "colour), a carrot, a stick of celery, a bay leaf and a few peppercorns. "
            "Cover with cold water by a few centimetres. Leave out the salt: the stock"
            " will be reduced and seasoned later, in whatever you cook with "
            "it.</p><p>Bring it slowly to the boil, then turn it down at once to the "
            "gentlest simmer, a bubble breaking the surface now and then. Hard boiling"
            " emulsifies the fat and makes the stock cloudy and greasy. Skim off the "
            "grey foam in the first twenty minutes, then leave it for three to four "
            "hours.</p><p>Strain it through a sieve, let it cool and put it in the "
            "fridge overnight. The fat sets in a layer on top and lifts off easily; "
            "underneath, a good stock is a wobbly jelly, from the gelatine in the "
            "bones. It keeps for four days in the fridge or three months in the "
            "freezer.</p>"
        ),
    },
    {
        "slug": "cleaning-a-bike-chain",
        "title": "Cleaning and oiling a bike chain",
        "intro": (
            "Ten minutes every couple of weeks, and a chain checker every 1,000 km."
        ),
        "body": (
            "<p>A dirty chain wastes your effort and wears out the expensive parts "
            "around it, the cassette and the chainrings. Ten minutes every couple of "
            "weeks, more often in winter, keeps the drivetrain quiet and running for "
            "thousands of kilometres.</p><p>Shift to the smallest sprocket, hold a rag"
            " around the lower run of the chain and turn the pedals backwards to wipe "
            "off the worst. For a deeper clean, brush on a degreaser, scrub the "
            "sprockets and jockey wheels with an old toothbrush, rinse with water and "
            "let it dry.</p><p>Then oil sparingly: one drop on each roller while you "
            "turn the cranks slowly. Wait a few minutes for it to soak in, then wipe "
            "the outside of the chain clean. The oil is needed inside the rollers; on "
            "the outside it only collects grit. Use a wet lube in winter and a dry "
            "lube in summer.</p><p>Chains stretch as the pins and rollers wear. "
            "Measure yours with a chain checker every 1,000 km or so, and replace it "
            "at 0.5 % wear on an 11- or 12-speed bike, 0.75 % on older ones. A new "
            "chain costs far less than the cassette a worn one would ruin.</p>"
        ),
    },
    {
        "slug": "going-tubeless",
        "title": "Going tubeless: tyres without inner tubes",
        "intro": (
            "Sealant closes small holes as you ride, and lower pressures become "
            "possible."
        ),
        "body": (
            "<p>A tubeless tyre seals directly against a tubeless-ready rim, with a "
            "valve fitted through the rim and no inner tube. Inside, 30 to 60 ml of "
            "liquid latex sealant plugs small holes as they happen: a thorn goes in, "
            "there is a brief hiss as the sealant sprays out and sets, and you ride "
            "on, often without noticing.</p><p>The other gain is lower pressure. "
            "Without a tube to pinch against the rim, a gravel or mountain bike tyre "
            "can run 0.3 to 0.5 bar softer, for more grip and comfort.</p><p>To "
            "convert, you need tubeless-ready rims and tyres, rim tape that seals the "
            "spoke holes, tubeless valves and sealant. Seating the tyre is the hard "
            "part: it takes a sudden rush of air to push the beads onto the rim, which"
            " a track pump with a charge chamber or a compressor gives. Spin the wheel"
            " to spread the sealant.</p><p>Sealant dries out, so top it up every three"
            " to six months. And carry a plug kit: for a cut too big for the sealant, "
            "push a sticky rubber plug into the hole. For a gash even that cannot "
            "close, an inner tube can still be fitted at the roadside.</p>"
        ),
    },
    {
        "slug": "watering-in-a-dry-summer",
        "title": "Watering the garden through a dry summer",
        "intro": "Water deeply and seldom, early in the day, and keep the moisture in.",
        "body": (
            "<p>In a hot, dry spell, watering well matters more than watering often. A"
            " light sprinkle every evening wets only the top centimetre of soil and "
            "keeps roots near the surface, where they dry out fastest. A thorough "
            "soaking once or twice a week sends the water, and the roots, "
            "deep.</p><p>Water early in the morning, at the base of the plants rather "
            "than over the leaves: less is lost to evaporation, and leaves left wet "
            "overnight invite mildew. A watering can without its rose, or a seep hose "
            "laid along the rows, puts the water where it is needed. Give priority to "
            "what was planted this year and to pots, which can dry out in a day; "
            "established shrubs and lawns survive a drought and recover.</p><p>Mulch "
            "bare soil with 5 cm of compost, bark or straw after rain or a good "
            "soaking, to hold the moisture in. And collect rainwater: a 200-litre "
            "water butt on a downpipe fills from a single heavy shower off an ordinary"
            " roof. Rainwater is also better than hard tap water for acid-loving "
            "plants such as blueberries.</p><p>During a hosepipe ban, watering cans "
            "filled from the butt are still allowed.</p>"
        ),
    },
    {
        "slug": "a-first-year-with-bees",
        "title": "A first year of beekeeping",
        "intro": "A nucleus colony, an inspection every week or so, and no honey yet.",
        "body": (
            "<p>Most beekeepers start with a nucleus colony, a small colony on five "
            "frames with a laying queen, bought in late spring. House it in a National"
            " or Langstroth hive in a sheltered, sunny spot, with the entrance facing "
            "away from paths.</p><p>Inspect it every seven to nine days from April to "
            "August, on a warm, calm day, with a veil, gloves and a smoker. You are "
            "looking for eggs (a sign that the queen is laying), for enough stores, "
            "and for queen cells, the peanut-shaped cells a colony builds when it "
            "prepares to swarm. Swarming is how colonies reproduce: half the bees "
            "leave with the old queen, and a beekeeper in the first year should learn "
            "to prevent it, or to catch the swarm.</p><p>Varroa destructor, a mite "
            "that feeds on the bees and spreads viruses, is in almost every colony. "
            "Count the mites that fall onto a sticky board, and treat in late summer "
            "once the honey is off, then again with oxalic acid in midwinter if the "
            "count is high.</p><p>Do not expect honey in the first year: the colony "
            "needs it to build up. Many beginners keep gentle strains such as the "
            "Buckfast bee, bred by Brother Adam at Buckfast Abbey from 1919 "
            "onwards.</p>"
        ),
    },
    {
        "slug": "slugs-and-seedlings",
        "title": "Protecting seedlings from slugs",
        "intro": (
            "Torchlight patrols, beer traps, copper tape and a nematode that does "
            "the rest."
        ),
        "body": (
            "<p>Slugs do most of their damage at night and in wet weather, and "
            "seedlings, young lettuces and hostas are their favourite food. A few "
            "slugs can strip a row of newly planted seedlings in a single "
            "night.</p><p>Go out with a torch on a damp evening and pick them off: it "
            "is the most effective control there is, and you will learn where they "
            "hide. Beer traps, jars sunk to the rim and half filled with beer, catch "
            "many. Copper tape around pots gives them a small unpleasant charge and "
            "keeps them off.</p><p>In a larger garden a biological control works well "
            "in spring: the nematode Phasmarhabditis hermaphrodita, sold as a powder "
            "to mix into a watering can. The microscopic worms enter the slugs and "
            "kill them within a few days, and they harm nothing else. Apply it when "
            "the soil is moist and above 5 °C; one pack treats 40 square metres for "
            "about six weeks.</p><p>Encourage the predators too: frogs, toads, "
            "hedgehogs, thrushes and ground beetles all eat slugs, and a small pond "
            "and a pile of logs do more than any pellet. Raise seedlings in pots until"
            " they are big enough to survive a nibble.</p>"
        ),
    },
    {
        "slug": "coffee-with-an-aeropress",
        "title": "Brewing coffee with an AeroPress",
        "intro": "Fifteen grams of coffee, 250 grams of water and two minutes.",
        "body": (
            "<p>The AeroPress, invented in 2005 by Alan Adler, the engineer behind the"
            " Aerobie flying ring, is a plastic cylinder and plunger that brews one "
            "cup in about two minutes. It is cheap, nearly unbreakable and easy to "
            "clean, which has made it a favourite of travellers.</p><p>A good recipe "
            "to start from: 15 g of coffee, ground a little finer than for a filter "
            "machine, and 250 g of water just off the boil, or at 85 to 90 °C for "
            "darker roasts. Put a paper filter in the cap and rinse it with hot water."
            " Add the coffee, pour in the water, stir for ten seconds and put the "
            "plunger in place to stop it dripping. After a minute and a half, press "
            "down slowly for about thirty seconds, until you hear a hiss.</p><p>Too "
            "bitter? Grind coarser, use cooler water or shorten the time. Too sour or "
            "thin? Grind finer or brew for longer. Change one thing at a "
            "time.</p><p>The inverted method, standing the AeroPress upside down on "
            "its plunger so that nothing drips through early, gives a fuller cup but "
            "can tip over, full of hot water. Every year the World AeroPress "
            "Championship publishes its winning recipes.</p>"
        ),
    },
    {
        "slug": "insulating-a-loft",
        "title": "Insulating a loft",
        "intro": (
            "270 mm of mineral wool, laid in two layers, with the eaves left clear."
        ),
        "body": (
            "<p>Up to a quarter of a house's heat can escape through an uninsulated "
            "roof, and laying insulation between and over the ceiling joists is one of"
            " the cheapest ways to cut heating bills. UK guidance recommends a total "
            "depth of 270 mm of mineral wool.</p><p>Lay a first layer of rolls, "
            "usually 100 mm deep, between the joists, and a second layer of 170 mm "
            "across them, at right angles, to cover the timber, which would otherwise "
            "carry heat through. Wear a mask, gloves and long sleeves: glass wool "
            "irritates the skin and lungs.</p><p>Keep the eaves clear so that air can "
            "move through the loft, or condensation will form on the cold roof timbers"
            " and rot them. Do not bury electric cables, which can overheat under "
            "insulation, or recessed spotlights without fire hoods. Lag the water tank"
            " and the pipes in the loft, which will now be much colder in winter, but "
            "leave the ceiling under the tank bare, so that a little warmth keeps it "
            "from freezing.</p><p>To store boxes up there, fit raised loft legs and "
            "boards over the insulation rather than squashing it: pressed to half its "
            "depth, it loses much of its effect.</p>"
        ),
    },
]
