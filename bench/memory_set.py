"""A labelled long-term memory set: 100 memories about one user and 40 questions.

Each question is paraphrased (it shares few words with its memory) and names the index of the
one memory that answers it; bench/memory.py measures recall@5 on it.
"""

from __future__ import annotations

MEMORIES: list[str] = [
    "The user's dog is a beagle named Biscuit.",  # 0
    "The user is allergic to shellfish.",  # 1
    "The user works as a nurse in a children's hospital.",  # 2
    "The user lives in Lyon, France.",  # 3
    "The user prefers answers in bullet points.",  # 4
    "The user's daughter Mia starts school in September.",  # 5
    "The user is training for the Berlin marathon.",  # 6
    "The user drives an electric Renault Zoe.",  # 7
    "The user is vegetarian.",  # 8
    "The user plays the cello in an amateur orchestra.",  # 9
    "The user's birthday is on the 14th of March.",  # 10
    "The user is learning Japanese for a trip next spring.",  # 11
    "The user uses Python and PostgreSQL at work.",  # 12
    "The user wants metric units, never imperial.",  # 13
    "The user's partner is called Sam.",  # 14
    "The user has a fear of flying.",  # 15
    "The user's favourite author is Ursula K. Le Guin.",  # 16
    "The user is saving money to buy a flat.",  # 17
    "The user grows tomatoes and basil on the balcony.",  # 18
    "The user takes the 7:40 train to work.",  # 19
    "The user drinks green tea, not coffee.",  # 20
    "The user's mother lives in Porto.",  # 21
    "The user has type 1 diabetes.",  # 22
    "The user supports Olympique Lyonnais.",  # 23
    "The user studied chemistry at university.",  # 24
    "The user's laptop is a ThinkPad running Fedora.",  # 25
    "The user wants short replies without small talk.",  # 26
    "The user volunteers at a food bank on Saturdays.",  # 27
    "The user is planning a wedding for next June.",  # 28
    "The user's cat Luna is fourteen years old.",  # 29
    "The user speaks French, Portuguese and English.",  # 30
    "The user is writing a novel about lighthouse keepers.",  # 31
    "The user goes climbing at an indoor gym twice a week.",  # 32
    "The user's manager is named Claire.",  # 33
    "The user is lactose intolerant.",  # 34
    "The user prefers dark mode in every app.",  # 35
    "The user bought a house with a large garden last year.",  # 36
    "The user collects vinyl records of 1970s jazz.",  # 37
    "The user's son plays football for the under-12 team.",  # 38
    "The user needs reading glasses.",  # 39
    "The user is a member of a chess club.",  # 40
    "The user bikes to work when the weather is good.",  # 41
    "The user's favourite cuisine is Ethiopian food.",  # 42
    "The user is studying for a project management certificate.",  # 43
    "The user hates horror films.",  # 44
    "The user keeps bees in the countryside.",  # 45
    "The user's brother is a pilot for a cargo airline.",  # 46
    "The user sleeps badly when it is hot.",  # 47
    "The user prefers email over phone calls.",  # 48
    "The user runs a small pottery shop online.",  # 49
    "The user's car insurance renews in November.",  # 50
    "The user meditates every morning for ten minutes.",  # 51
    "The user has two goldfish named Salt and Pepper.",  # 52
    "The user is afraid of spiders.",  # 53
    "The user's grandmother turned one hundred this year.",  # 54
    "The user works remotely on Fridays.",  # 55
    "The user likes hiking in the Alps in summer.",  # 56
    "The user reads science fiction before bed.",  # 57
    "The user's favourite colour is teal.",  # 58
    "The user is left-handed.",  # 59
    "The user's company sells accounting software.",  # 60
    "The user is trying to cut down on sugar.",  # 61
    "The user plays Dungeons and Dragons with old friends.",  # 62
    "The user's apartment has no elevator.",  # 63
    "The user prefers trains to planes for travel in Europe.",  # 64
    "The user's dentist appointment is every six months.",  # 65
    "The user knits scarves for the winter market.",  # 66
    "The user is colour blind.",  # 67
    "The user's best friend moved to Montreal.",  # 68
    "The user listens to podcasts about history.",  # 69
    "The user wants code examples in TypeScript.",  # 70
    "The user has a mortgage with a fixed rate.",  # 71
    "The user bakes sourdough bread every weekend.",  # 72
    "The user is a volunteer firefighter.",  # 73
    "The user's passport expires next year.",  # 74
    "The user doesn't eat pork.",  # 75
    "The user has a degree in architecture.",  # 76
    "The user is building a wooden canoe.",  # 77
    "The user uses a standing desk.",  # 78
    "The user's favourite season is autumn.",  # 79
    "The user works night shifts twice a month.",  # 80
    "The user's twins were born in 2019.",  # 81
    "The user swims in the lake every morning in summer.",  # 82
    "The user does not want reminders on weekends.",  # 83
    "The user's salary is paid on the 25th of each month.",  # 84
    "The user keeps a paper diary.",  # 85
    "The user is allergic to cats.",  # 86
    "The user grew up on a farm in Brittany.",  # 87
    "The user plays the piano by ear.",  # 88
    "The user's gym membership ends in April.",  # 89
    "The user's favourite film is Spirited Away.",  # 90
    "The user owns an old Vespa scooter.",  # 91
    "The user is a night owl and works best late.",  # 92
    "The user's team uses Jira and Confluence.",  # 93
    "The user was born in Lisbon.",  # 94
    "The user wants prices shown in euros.",  # 95
    "The user recently had knee surgery.",  # 96
    "The user's landlord is slow to fix things.",  # 97
    "The user sings in a gospel choir.",  # 98
    "The user is saving for a trip to Patagonia.",  # 99
]

# (question, index of the memory that answers it)
QUESTIONS: list[tuple[str, int]] = [
    ("What breed is my pet?", 0),
    ("Can I eat the prawn risotto at this restaurant?", 1),
    ("Where do I do my job?", 2),
    ("Which city am I based in?", 3),
    ("How should you format your replies to me?", 4),
    ("When does my little girl begin classes?", 5),
    ("What race am I preparing for?", 6),
    ("What kind of car do I have?", 7),
    ("Suggest a dinner that fits my diet.", 8),
    ("Which instrument do I play?", 9),
    ("When should my friends celebrate me?", 10),
    ("Which language am I studying?", 11),
    ("What tech stack do I use professionally?", 12),
    ("Should you give me distances in miles?", 13),
    ("What is the name of the person I live with?", 14),
    ("Why might I avoid airports?", 15),
    ("Recommend a book by the writer I love most.", 16),
    ("What am I putting money aside for?", 17),
    ("What plants do I grow at home?", 18),
    ("How do I commute in the morning?", 19),
    ("What hot drink do I like?", 20),
    ("Which city does my mum live in?", 21),
    ("Do I have a medical condition affecting my blood sugar?", 22),
    ("Which football club do I cheer for?", 23),
    ("What did I major in?", 24),
    ("Which operating system is on my computer?", 25),
    ("How long should your answers be?", 26),
    ("What do I do on weekend mornings to help others?", 27),
    ("What big celebration am I organising?", 28),
    ("How old is my kitty?", 29),
    ("What languages can I speak?", 30),
    ("What is my book about?", 31),
    ("What sport do I do at the gym?", 32),
    ("Who is my boss?", 33),
    ("Can I drink milk?", 34),
    ("Which colour theme do I like on screens?", 35),
    ("Do I have outdoor space at home?", 36),
    ("What music do I collect?", 37),
    ("Which sport does my boy play?", 38),
    ("Do I need help to see small print?", 39),
]
