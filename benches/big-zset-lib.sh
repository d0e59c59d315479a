# Sourced by the collections benches (collections-vs-redis.sh,
# collections-callgrind.sh): the big-key tests, one command shape each over
# ONE sorted set of $BIG members (scores 0..BIG-1, members
# m000000000000..), with R = redis-benchmark's __rand_int__ below BIG
# (-r BIG).
#
#   big_command TEST   the redis-benchmark command words of TEST
#   fill_big PORT      fills bigz with BIG members (ZADDs of 1,000 pairs)

big_command() { # test -> redis-benchmark command words
    case $1 in
        zadd_big) echo "ZADD bigz __rand_int__ m__rand_int__" ;;
        zrank_big) echo "ZRANK bigz m__rand_int__" ;;
        zscore_big) echo "ZSCORE bigz m__rand_int__" ;;
        zincrby_big) echo "ZINCRBY bigz 1 m__rand_int__" ;;
        zrange_big) echo "ZRANGEBYSCORE bigz __rand_int__ +inf LIMIT 0 10" ;;
    esac
}

fill_big() { # port
    local batch=1000 i j line m
    for ((i = 0; i < BIG; i += batch)); do
        line=""
        for ((j = i; j < i + batch && j < BIG; j++)); do printf -v m 'm%012d' "$j"; line+=" $j $m"; done
        echo "ZADD bigz$line"
    done | redis-cli -p "$1" >/dev/null
}
