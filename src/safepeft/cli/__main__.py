from safepeft.cli.main import main

main()
